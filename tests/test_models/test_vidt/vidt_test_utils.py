"""Shared builders for the ViDT tests: a tiny ViDT and synthetic batches.

Importing this module registers the ViDT classes; :func:`build_mmdet`
builds a config in mmdet's registry scope.
"""

import copy
from typing import List, Sequence, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.registry import MODELS, DefaultScope
from mmengine.structures import InstanceData

import mokd_mm.models.vidt  # noqa: F401  (registers SwinRAM and ViDT)

TINY_ARCH = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))

TINY_VIDT = dict(
    type='ViDT',
    num_queries=6,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1,
    ),
    backbone=dict(
        type='SwinRAM', arch=TINY_ARCH, det_pos_dims=32, extra_level_channels=32, window_size=7
    ),
    decoder=dict(
        num_layers=2,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=64, num_heads=4, batch_first=True),
            cross_attn_cfg=dict(
                embed_dims=64,
                num_heads=4,
                num_levels=4,
                num_points=2,
                dropout=0.0,
                batch_first=True,
            ),
            ffn_cfg=dict(embed_dims=64, feedforward_channels=128, ffn_drop=0.0),
        ),
        post_norm_cfg=None,
    ),
    bbox_head=dict(
        type='DeformableDETRHead',
        num_classes=80,
        embed_dims=64,
        sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
    ),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
            ],
        )
    ),
    test_cfg=dict(max_per_img=5),
)


def build_mmdet(cfg: dict):
    """Build ``cfg`` in mmdet's scope, whatever the current default scope."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def tiny_vidt_cfg(embed_dims: int = 64, num_decoder_layers: int = 2) -> dict:
    """A fresh copy of the tiny ViDT config (safe to modify), optionally
    with another neck width or decoder depth."""
    cfg = copy.deepcopy(TINY_VIDT)
    layer = cfg['decoder']['layer_cfg']
    for key in ('self_attn_cfg', 'cross_attn_cfg', 'ffn_cfg'):
        layer[key]['embed_dims'] = embed_dims
    cfg['bbox_head']['embed_dims'] = embed_dims
    cfg['decoder']['num_layers'] = num_decoder_layers
    return cfg


def make_batch(
    sizes: Sequence[Tuple[int, int]], num_boxes: Sequence[int], num_classes: int = 80, seed: int = 0
) -> dict:
    """Random uint8 images with random boxes, in the layout that
    ``DetDataPreprocessor`` takes (``inputs`` list, ``data_samples``)."""
    g = torch.Generator().manual_seed(seed)
    inputs: List[torch.Tensor] = []
    samples: List[DetDataSample] = []
    for i, ((h, w), n) in enumerate(zip(sizes, num_boxes)):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = DetDataSample(
            metainfo=dict(img_id=i, img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0))
        )
        size = torch.tensor([w, h], dtype=torch.float32)
        top_left = torch.rand(n, 2, generator=g) * size * 0.5
        extent = (torch.rand(n, 2, generator=g) * 0.4 + 0.1) * size
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([top_left, top_left + extent], 1),
            labels=torch.randint(0, num_classes, (n,), generator=g),
        )
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
