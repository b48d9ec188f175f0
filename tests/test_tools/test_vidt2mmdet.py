"""Round trip of tools/model_converters/vidt2mmdet.py on a checkpoint in the
official naver-ai/vidt key layout, built here from a tiny ViDT."""

import argparse
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.registry import DefaultScope

import mokd_mm.models.vidt  # noqa: F401  (registers ViDT)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'vidt2mmdet.py')
# COCO numbers its 80 categories 1..90 with ten numbers unused.
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]

TINY = dict(
    type='ViDT',
    num_queries=4,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
    ),
    backbone=dict(
        type='SwinRAM',
        arch=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)),
        det_pos_dims=32,
        extra_level_channels=32,
    ),
    decoder=dict(
        num_layers=2,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=32, num_heads=2, batch_first=True),
            cross_attn_cfg=dict(embed_dims=32, num_heads=2, num_points=2, batch_first=True),
            ffn_cfg=dict(embed_dims=32, feedforward_channels=64),
        ),
        post_norm_cfg=None,
    ),
    bbox_head=dict(
        type='DeformableDETRHead',
        num_classes=80,
        embed_dims=32,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
    ),
    test_cfg=dict(max_per_img=4),
)

# This implementation's keys -> the official ViDT keys (written
# independently of the converter, from the official module tree).
TO_OFFICIAL = [
    (r'backbone\.patch_embed\.projection\.(.+)', r'backbone.patch_embed.proj.\1'),
    (r'backbone\.det_tokens', 'backbone.det_token'),
    (
        r'backbone\.stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.0\.0\.(.+)',
        r'backbone.layers.\1.blocks.\2.mlp.fc1.\3',
    ),
    (
        r'backbone\.stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.1\.(.+)',
        r'backbone.layers.\1.blocks.\2.mlp.fc2.\3',
    ),
    (
        r'backbone\.stages\.(\d+)\.blocks\.(\d+)\.det_pos_proj\.(.+)',
        r'backbone.layers.\1.blocks.\2.det_pos_linear.\3',
    ),
    (r'backbone\.stages\.(.+)', r'backbone.layers.\1'),
    (r'input_projs\.(\d+)\.conv\.(.+)', r'input_proj.\1.0.\2'),
    (r'input_projs\.(\d+)\.gn\.(.+)', r'input_proj.\1.1.\2'),
    (r'det_token_proj\.conv\.(.+)', r'tgt_proj.0.\1'),
    (r'det_token_proj\.gn\.(.+)', r'tgt_proj.1.\1'),
    (r'det_pos_proj\.conv\.(.+)', r'query_pos_proj.0.\1'),
    (r'det_pos_proj\.gn\.(.+)', r'query_pos_proj.1.\1'),
    (r'reference_points_fc\.(.+)', r'transformer.reference_points.\1'),
    (
        r'decoder\.layers\.(\d+)\.self_attn\.attn\.(.+)',
        r'transformer.decoder.layers.\1.self_attn.\2',
    ),
    (r'decoder\.layers\.(\d+)\.norms\.0\.(.+)', r'transformer.decoder.layers.\1.norm2.\2'),
    (r'decoder\.layers\.(\d+)\.norms\.1\.(.+)', r'transformer.decoder.layers.\1.norm1.\2'),
    (r'decoder\.layers\.(\d+)\.norms\.2\.(.+)', r'transformer.decoder.layers.\1.norm3.\2'),
    (
        r'decoder\.layers\.(\d+)\.ffn\.layers\.0\.0\.(.+)',
        r'transformer.decoder.layers.\1.linear1.\2',
    ),
    (r'decoder\.layers\.(\d+)\.ffn\.layers\.1\.(.+)', r'transformer.decoder.layers.\1.linear2.\2'),
    (r'decoder\.(.+)', r'transformer.decoder.\1'),
    (r'bbox_head\.cls_branches\.(.+)', r'class_embed.\1'),
]


def load_converter():
    spec = importlib.util.spec_from_file_location('vidt2mmdet', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_tiny(seed: int):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(TINY)
    model.init_weights()
    with torch.no_grad():
        # Make every tensor distinctive (zero-init branches included).
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def to_official(model) -> dict:
    """State dict of ``model`` in the official layout, 91 class rows, plus
    the entries the official model carries but never uses."""
    official = {}
    for key, value in model.state_dict().items():
        m = re.fullmatch(r'bbox_head\.reg_branches\.(\d+)\.(\d)\.(.+)', key)
        if m:
            branch, index, param = m.groups()
            official[f'bbox_embed.{branch}.layers.{int(index) // 2}.{param}'] = value
            official[
                f'transformer.decoder.bbox_embed.{branch}.layers.{int(index) // 2}.{param}'
            ] = value
            continue
        for pattern, replacement in TO_OFFICIAL:
            if re.fullmatch(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        if key.startswith('class_embed.'):
            rows = torch.randn(91, *value.shape[1:])
            rows[COCO_IDS] = value
            value = rows
        official[key] = value
    for i, channels in zip((1, 2, 3), (32, 64, 128)):
        official[f'backbone.norm{i}.weight'] = torch.ones(channels)
        official[f'backbone.norm{i}.bias'] = torch.zeros(channels)
    for i, channels in enumerate((16, 32, 64, 128)):
        prefix = f'backbone.layers.{i}.downsample.'
        out = 32 if i == 3 else 2 * channels
        official[prefix + 'expansion.weight'] = torch.randn(out, channels)
        official[prefix + 'norm2.weight'] = torch.ones(channels)
        official[prefix + 'norm2.bias'] = torch.zeros(channels)
        for j in range(2):
            official[f'backbone.layers.{i}.blocks.{j}.attn.relative_position_index'] = torch.zeros(
                49, 49, dtype=torch.long
            )
    official['transformer.level_embed'] = torch.randn(4, 32)
    return official


def run_tensor_mode(model):
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 64, 96)
    samples = []
    for hw in [(64, 96), (64, 64)]:
        samples.append(DetDataSample(metainfo=dict(img_shape=hw, batch_input_shape=(64, 96))))
    with torch.no_grad():
        return model(inputs, samples, mode='tensor')


@pytest.fixture(scope='module')
def source_model():
    return build_tiny(seed=0)


def test_cli_round_trip_reproduces_outputs(source_model, tmp_path):
    src = tmp_path / 'vidt_official.pth'
    dst = tmp_path / 'out' / 'vidt_mmdet.pth'
    torch.save(
        dict(
            model=to_official(source_model),
            args=argparse.Namespace(backbone_name='swin_nano'),
            epoch=49,
        ),
        src,
    )
    subprocess.run(
        [sys.executable, CONVERTER, str(src), str(dst)],
        check=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    # Atomic write: only the destination, no temporary file left behind.
    assert os.listdir(dst.parent) == ['vidt_mmdet.pth']
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['num_classes'] == 80
    assert checkpoint['meta']['coco_category_ids'] == COCO_IDS

    target = build_tiny(seed=123)
    target.load_state_dict(checkpoint['state_dict'], strict=True)
    for got, want in zip(run_tensor_mode(target), run_tensor_mode(source_model)):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(
        checkpoint['state_dict']['bbox_head.cls_branches.2.weight'],
        source_model.bbox_head.cls_branches[2].weight,
    )


def test_unknown_and_missing_keys_are_named(source_model):
    converter = load_converter()
    official = to_official(source_model)
    with pytest.raises(converter.ConversionError, match=r'transformer\.enc_output\.weight'):
        converter.convert_vidt({**official, 'transformer.enc_output.weight': torch.zeros(2)})
    missing = dict(official)
    del missing['transformer.decoder.layers.1.linear2.bias']
    del missing['backbone.det_pos_embed']
    with pytest.raises(converter.ConversionError) as error:
        converter.convert_vidt(missing)
    assert 'transformer.decoder.layers.1.linear2.bias' in str(error.value)
    assert 'backbone.det_pos_embed' in str(error.value)


def test_class_rows_and_alias_are_checked(source_model):
    converter = load_converter()
    official = to_official(source_model)
    eighty = dict(official)
    eighty['class_embed.0.weight'] = official['class_embed.0.weight'][:80]
    with pytest.raises(
        converter.ConversionError, match=r'class_embed\.0\.weight has 80 class rows'
    ):
        converter.convert_vidt(eighty)
    bad_alias = dict(official)
    key = 'transformer.decoder.bbox_embed.1.layers.0.weight'
    bad_alias[key] = official[key] + 1
    with pytest.raises(converter.ConversionError, match=re.escape(key)):
        converter.convert_vidt(bad_alias)
    # A DistributedDataParallel ``module.`` prefix is accepted.
    prefixed = {'module.' + k: v for k, v in official.items()}
    assert converter.convert_vidt(prefixed).keys() == converter.convert_vidt(official).keys()
