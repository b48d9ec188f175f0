# Copyright (c) mokd_mm contributors. All rights reserved.
"""ViDT (Song et al., ICLR 2022) as MMDetection 3.x components.

Importing this package registers :class:`SwinRAM`, :class:`ViDT` and
:class:`FallbackFocalLoss` in mmdet's ``MODELS`` registry (use them with
``default_scope='mmdet'``).
"""

from .cuda_fallback import (
    FallbackFocalLoss,
    FallbackMultiScaleDeformableAttention,
    mmcv_cuda_ops_available,
)
from .deformable_decoder import FallbackDeformableDecoder, FallbackDeformableDecoderLayer
from .padding import downsample_padding_mask, padding_mask_from_samples
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
    'FallbackMultiScaleDeformableAttention',
    'FallbackDeformableDecoderLayer',
    'FallbackDeformableDecoder',
    'FallbackFocalLoss',
    'mmcv_cuda_ops_available',
    'padding_mask_from_samples',
    'downsample_padding_mask',
]
