"""The CIFAR ResNet family of He et al. (2016), section 4.2."""

from typing import Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.backbones.resnet import BasicBlock, ResLayer
from mmpretrain.registry import MODELS

from .base import CIFAR_INIT_CFG, CifarBackbone


@MODELS.register_module()
class CifarResNet(CifarBackbone):
    """ResNet for 32x32 images: a 3x3 stem and three stages of basic blocks.

    The stem is a stride-1 3x3 convolution (no max-pool); the stages use
    stride 1, 2, 2, so a 32x32 input gives 32x32, 16x16 and 8x8 maps. A
    network of depth ``6n + 2`` has ``n`` basic blocks per stage. A stage
    that changes the width or the resolution starts with a 1x1 projection
    shortcut.

    Common settings (the CRD / RepDistiller benchmark models):

    - ResNet-20 / 56 / 110: ``depth=20 / 56 / 110``, ``stem_channels=16``,
      ``stage_channels=(16, 32, 64)`` (the defaults).
    - ResNet-8x4 / 32x4: ``depth=8 / 32``, ``stem_channels=32``,
      ``stage_channels=(64, 128, 256)``.

    Args:
        depth (int): Number of weighted layers, ``6n + 2`` with n >= 1.
            Defaults to 20.
        stem_channels (int): Output channels of the stem. Defaults to 16.
        stage_channels (Sequence[int]): Output channels of the three stages.
            Defaults to ``(16, 32, 64)``.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(2, )``.
        norm_cfg (dict): Normalization layer config. Defaults to
            ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions and unit-scale norms.

    Example:
        >>> import torch
        >>> net = CifarResNet(depth=56, out_indices=(0, 1, 2))
        >>> [tuple(f.shape) for f in net(torch.rand(2, 3, 32, 32))]
        [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    """

    def __init__(
        self,
        depth: int = 20,
        stem_channels: int = 16,
        stage_channels: Sequence[int] = (16, 32, 64),
        out_indices: Sequence[int] = (2,),
        norm_cfg: dict = dict(type='BN'),
        init_cfg=CIFAR_INIT_CFG,
    ):
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f'CifarResNet depth must be 6n+2 with n >= 1, got {depth}')
        if len(stage_channels) != 3:
            raise ValueError(
                f'CifarResNet stage_channels must list 3 widths, got {tuple(stage_channels)}'
            )
        super().__init__(out_indices, len(stage_channels), init_cfg)
        self.depth = depth
        blocks_per_stage = (depth - 2) // 6

        self.stem = ConvModule(3, stem_channels, kernel_size=3, padding=1, norm_cfg=norm_cfg)
        self.stages = nn.ModuleList()
        in_channels = stem_channels
        for index, out_channels in enumerate(stage_channels):
            self.stages.append(
                ResLayer(
                    BasicBlock,
                    num_blocks=blocks_per_stage,
                    in_channels=in_channels,
                    out_channels=out_channels,
                    expansion=1,
                    stride=1 if index == 0 else 2,
                    norm_cfg=norm_cfg,
                )
            )
            in_channels = out_channels
