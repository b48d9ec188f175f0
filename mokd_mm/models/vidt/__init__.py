# Copyright (c) mokd_mm contributors. All rights reserved.
"""ViDT (Song et al., ICLR 2022) as MMDetection 3.x components.

Importing this package registers :class:`SwinRAM` and :class:`ViDT` in
mmdet's ``MODELS`` registry (use them with ``default_scope='mmdet'``); the
decoder, its deformable attention and the focal loss are mmdet's and mmcv's.
"""

from .padding import padding_mask_from_samples
from .swin_ram import PatchDetMerging, ReconfiguredAttention, SwinRAM, SwinRAMBlock, SwinRAMStage
from .vidt import TokenProjection, ViDT

__all__ = [
    'SwinRAM',
    'SwinRAMStage',
    'SwinRAMBlock',
    'ReconfiguredAttention',
    'PatchDetMerging',
    'ViDT',
    'TokenProjection',
    'padding_mask_from_samples',
]
