# Copyright (c) mokd_mm contributors. All rights reserved.
"""Convert an official ViDT checkpoint (naver-ai/vidt) to ``mokd_mm``'s ViDT.

The official checkpoint stores the detector's state dict under ``model``
with 91 class rows (raw COCO category ids, DETR style). The converted file
holds ``{'state_dict': ..., 'meta': ...}`` in the key layout of
``mokd_mm.models.vidt.ViDT`` with mmdet's 80 contiguous COCO classes.

Dropped official entries, all unused by the official forward pass:
``backbone.norm{1,2,3}``, the patch mergings' ``expansion`` and ``norm2``,
``transformer.level_embed``, the ``relative_position_index`` buffers (rebuilt
from the window size) and ``transformer.decoder.bbox_embed`` (an alias of
``bbox_embed``).

The configs under ``configs/vidt`` mask padding as the official code does
(``padding_masks='official'``), so a converted checkpoint gives the official
outputs on any batch.

Usage::

    python tools/model_converters/vidt2mmdet.py SRC DST
"""

import argparse
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from mokd_mm.checkpoint import load_checkpoint, save_checkpoint_atomic

# COCO 2017 category ids of mmdet's 80 contiguous classes, in class order.
# fmt: off
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
    67, 70, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)
# fmt: on
NUM_OFFICIAL_CLASSES = 91

# (official key pattern, target key template); templates use the groups.
_RENAMES: List[Tuple[str, str]] = [
    # body
    (r'backbone\.patch_embed\.proj\.(weight|bias)', 'backbone.patch_embed.projection.{0}'),
    (r'backbone\.patch_embed\.norm\.(weight|bias)', 'backbone.patch_embed.norm.{0}'),
    (r'backbone\.det_token', 'backbone.det_tokens'),
    (r'backbone\.det_pos_embed', 'backbone.det_pos_embed'),
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)',
        'backbone.stages.{0}.blocks.{1}.{2}.{3}',
    ),
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.attn\.'
        r'relative_position_bias_table',
        'backbone.stages.{0}.blocks.{1}.attn.relative_position_bias_table',
    ),
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.attn\.(qkv|proj)\.'
        r'(weight|bias)',
        'backbone.stages.{0}.blocks.{1}.attn.{2}.{3}',
    ),
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)',
        'backbone.stages.{0}.blocks.{1}.ffn.layers.0.0.{2}',
    ),
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)',
        'backbone.stages.{0}.blocks.{1}.ffn.layers.1.{2}',
    ),
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.det_pos_linear\.'
        r'(weight|bias)',
        'backbone.stages.{0}.blocks.{1}.det_pos_proj.{2}',
    ),
    (
        r'backbone\.layers\.(\d+)\.downsample\.norm\.(weight|bias)',
        'backbone.stages.{0}.downsample.norm.{1}',
    ),
    (
        r'backbone\.layers\.(\d+)\.downsample\.reduction\.weight',
        'backbone.stages.{0}.downsample.reduction.weight',
    ),
    # neck
    (r'input_proj\.(\d+)\.0\.(weight|bias)', 'input_projs.{0}.conv.{1}'),
    (r'input_proj\.(\d+)\.1\.(weight|bias)', 'input_projs.{0}.gn.{1}'),
    (r'tgt_proj\.0\.(weight|bias)', 'det_token_proj.conv.{0}'),
    (r'tgt_proj\.1\.(weight|bias)', 'det_token_proj.gn.{0}'),
    (r'query_pos_proj\.0\.(weight|bias)', 'det_pos_proj.conv.{0}'),
    (r'query_pos_proj\.1\.(weight|bias)', 'det_pos_proj.gn.{0}'),
    (r'transformer\.reference_points\.(weight|bias)', 'reference_points_fc.{0}'),
    # decoder (official norm2 follows self-attention, norm1 cross-attention)
    (
        r'transformer\.decoder\.layers\.(\d+)\.self_attn\.(in_proj_weight|'
        r'in_proj_bias)',
        'decoder.layers.{0}.self_attn.attn.{1}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.self_attn\.out_proj\.'
        r'(weight|bias)',
        'decoder.layers.{0}.self_attn.attn.out_proj.{1}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.cross_attn\.(sampling_offsets|'
        r'attention_weights|value_proj|output_proj)\.(weight|bias)',
        'decoder.layers.{0}.cross_attn.{1}.{2}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.norm2\.(weight|bias)',
        'decoder.layers.{0}.norms.0.{1}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.norm1\.(weight|bias)',
        'decoder.layers.{0}.norms.1.{1}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.norm3\.(weight|bias)',
        'decoder.layers.{0}.norms.2.{1}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.linear1\.(weight|bias)',
        'decoder.layers.{0}.ffn.layers.0.0.{1}',
    ),
    (
        r'transformer\.decoder\.layers\.(\d+)\.linear2\.(weight|bias)',
        'decoder.layers.{0}.ffn.layers.1.{1}',
    ),
    # head
    (r'class_embed\.(\d+)\.(weight|bias)', 'bbox_head.cls_branches.{0}.{1}'),
]

# Official entries that the official forward pass never uses.
_UNUSED = [
    r'backbone\.norm\d+\.(weight|bias)',
    r'backbone\.layers\.\d+\.downsample\.expansion\.weight',
    r'backbone\.layers\.\d+\.downsample\.norm2\.(weight|bias)',
    r'backbone\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index',
    r'transformer\.level_embed',
]

# Per-unit parameter names each official checkpoint must have, used to name
# missing keys: (unit pattern, unit template, required suffixes).
_BLOCK_SUFFIXES = (
    'norm1.weight',
    'norm1.bias',
    'norm2.weight',
    'norm2.bias',
    'attn.relative_position_bias_table',
    'attn.qkv.weight',
    'attn.qkv.bias',
    'attn.proj.weight',
    'attn.proj.bias',
    'mlp.fc1.weight',
    'mlp.fc1.bias',
    'mlp.fc2.weight',
    'mlp.fc2.bias',
    'det_pos_linear.weight',
    'det_pos_linear.bias',
)
_DECODER_SUFFIXES = tuple(
    f'{name}.{p}'
    for name in (
        'cross_attn.sampling_offsets',
        'cross_attn.attention_weights',
        'cross_attn.value_proj',
        'cross_attn.output_proj',
        'self_attn.out_proj',
        'norm1',
        'norm2',
        'norm3',
        'linear1',
        'linear2',
    )
    for p in ('weight', 'bias')
) + ('self_attn.in_proj_weight', 'self_attn.in_proj_bias')
_UNITS: List[Tuple[str, str, Tuple[str, ...]]] = [
    (
        r'backbone\.layers\.(\d+)\.blocks\.(\d+)\.',
        'backbone.layers.{0}.blocks.{1}.',
        _BLOCK_SUFFIXES,
    ),
    (
        r'backbone\.layers\.(\d+)\.downsample\.',
        'backbone.layers.{0}.downsample.',
        ('norm.weight', 'norm.bias', 'reduction.weight'),
    ),
    (r'input_proj\.(\d+)\.', 'input_proj.{0}.', ('0.weight', '0.bias', '1.weight', '1.bias')),
    (
        r'transformer\.decoder\.layers\.(\d+)\.',
        'transformer.decoder.layers.{0}.',
        _DECODER_SUFFIXES,
    ),
    (r'class_embed\.(\d+)\.', 'class_embed.{0}.', ('weight', 'bias')),
    (
        r'bbox_embed\.(\d+)\.',
        'bbox_embed.{0}.',
        tuple(f'layers.{i}.{p}' for i in range(3) for p in ('weight', 'bias')),
    ),
]
_SINGLE_KEYS = (
    'backbone.patch_embed.proj.weight',
    'backbone.patch_embed.proj.bias',
    'backbone.patch_embed.norm.weight',
    'backbone.patch_embed.norm.bias',
    'backbone.det_token',
    'backbone.det_pos_embed',
    'tgt_proj.0.weight',
    'tgt_proj.0.bias',
    'tgt_proj.1.weight',
    'tgt_proj.1.bias',
    'query_pos_proj.0.weight',
    'query_pos_proj.0.bias',
    'query_pos_proj.1.weight',
    'query_pos_proj.1.bias',
    'transformer.reference_points.weight',
    'transformer.reference_points.bias',
)


class ConversionError(ValueError):
    """The source checkpoint does not have the official ViDT layout."""


def _missing_keys(official: Dict[str, torch.Tensor]) -> List[str]:
    """Keys a complete official ViDT state dict would have but this lacks.

    Units (blocks, decoder layers, heads, ...) are found from any of their
    keys, then each must have all its parameters.
    """
    missing = [k for k in _SINGLE_KEYS if k not in official]
    for pattern, template, suffixes in _UNITS:
        units = {m.groups() for m in (re.match(pattern, k) for k in official) if m}
        for groups in sorted(units):
            prefix = template.format(*groups)
            missing += [prefix + s for s in suffixes if prefix + s not in official]
    return missing


def _rename(key: str) -> Optional[str]:
    """Target key of an official key, ``None`` when no rule matches."""
    for pattern, template in _RENAMES:
        m = re.fullmatch(pattern, key)
        if m:
            return template.format(*m.groups())
    m = re.fullmatch(r'bbox_embed\.(\d+)\.layers\.(\d+)\.(weight|bias)', key)
    if m:
        # Official MLP layers 0, 1, 2 sit at 0, 2, 4 of mmdet's
        # Linear-ReLU-Linear-ReLU-Linear branch.
        branch, layer, param = m.groups()
        return f'bbox_head.reg_branches.{branch}.{2 * int(layer)}.{param}'
    return None


def _is_unused(key: str) -> bool:
    return any(re.fullmatch(p, key) for p in _UNUSED)


def _check_decoder_alias(official: Dict[str, torch.Tensor]) -> None:
    """``transformer.decoder.bbox_embed`` must equal ``bbox_embed``."""
    prefix = 'transformer.decoder.'
    for key, value in official.items():
        if not key.startswith(prefix + 'bbox_embed.'):
            continue
        twin = official.get(key[len(prefix) :])
        if twin is None or not torch.equal(twin, value):
            raise ConversionError(
                f'{key} is not an alias of {key[len(prefix) :]}; the '
                'checkpoint was not saved by the official ViDT'
            )


def _select_coco_classes(key: str, tensor: torch.Tensor) -> torch.Tensor:
    """91 raw-id rows -> 80 contiguous-class rows."""
    if tensor.shape[0] != NUM_OFFICIAL_CLASSES:
        raise ConversionError(
            f'{key} has {tensor.shape[0]} class rows; expected '
            f'{NUM_OFFICIAL_CLASSES} (raw COCO category ids)'
        )
    return tensor[list(COCO_CATEGORY_IDS)].clone()


def convert_vidt(official: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an official ViDT state dict to this implementation's keys.

    Args:
        official (dict[str, Tensor]): The ``model`` entry of an official
            ViDT checkpoint (optionally with a ``module.`` prefix).

    Returns:
        OrderedDict[str, Tensor]: State dict for
        ``mokd_mm.models.vidt.ViDT`` with 80 classes.

    Raises:
        ConversionError: Listing unknown keys, missing keys or bad shapes.
    """
    official = OrderedDict(
        (k[len('module.') :] if k.startswith('module.') else k, v) for k, v in official.items()
    )
    missing = _missing_keys(official)
    if missing:
        raise ConversionError(f'{len(missing)} official ViDT keys missing: {missing}')
    _check_decoder_alias(official)
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    unknown = []
    for key, value in official.items():
        if _is_unused(key) or key.startswith('transformer.decoder.bbox_embed.'):
            continue
        target = _rename(key)
        if target is None:
            unknown.append(key)
            continue
        if key.startswith('class_embed.'):
            value = _select_coco_classes(key, value)
        converted[target] = value
    if unknown:
        raise ConversionError(
            f'{len(unknown)} keys unknown to the ViDT converter (not an '
            f'official ViDT-Swin detector?): {unknown}'
        )
    return converted


def _load_official(path: str) -> Dict[str, torch.Tensor]:
    """Load the ``model`` state dict of an official checkpoint.

    The official training script also pickles its ``argparse.Namespace``;
    it is allow-listed so that loading stays ``weights_only``.
    """
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict) or 'model' not in checkpoint:
        raise ConversionError(f'{path} has no "model" entry; not an official ViDT checkpoint')
    return checkpoint['model']


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert an official ViDT checkpoint to mokd_mm ViDT.'
    )
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    args = parser.parse_args(argv)
    state_dict = convert_vidt(_load_official(args.src))
    meta = dict(
        source=osp.abspath(args.src),
        converter='tools/model_converters/vidt2mmdet.py',
        official_repo='naver-ai/vidt',
        num_classes=len(COCO_CATEGORY_IDS),
        coco_category_ids=list(COCO_CATEGORY_IDS),
    )
    save_checkpoint_atomic(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'Converted {len(state_dict)} tensors: {args.src} -> {args.dst}')


if __name__ == '__main__':
    main()
