"""Wide residual networks (Zagoruyko & Komodakis, 2016) for CIFAR."""

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmpretrain.registry import MODELS

from .base import CIFAR_INIT_CFG, CifarBackbone


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3, BN-ReLU-conv3x3.

    When the block changes the width or the resolution, a 1x1 convolution
    on the pre-activated input forms the shortcut; otherwise the raw input
    is added back.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first 3x3 convolution. Defaults to 1.
        norm_cfg (dict): Normalization layer config. Defaults to
            ``dict(type='BN')``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, norm_cfg: dict = dict(type='BN')
    ):
        super().__init__()
        self.pre_act = nn.Sequential(
            build_norm_layer(norm_cfg, in_channels)[1], nn.ReLU(inplace=True)
        )
        self.conv1 = ConvModule(
            in_channels, out_channels, kernel_size=3, stride=stride, padding=1, norm_cfg=norm_cfg
        )
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.shortcut: Optional[nn.Conv2d] = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, kernel_size=1, stride=stride, bias=False
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x (torch.Tensor): (N, C_in, H, W).

        Returns:
            torch.Tensor: (N, C_out, H / stride, W / stride), before any
            activation (the next block or the final norm activates it).
        """
        activated = self.pre_act(x)
        identity = x if self.shortcut is None else self.shortcut(activated)
        return self.conv2(self.conv1(activated)) + identity


@MODELS.register_module()
class CifarWideResNet(CifarBackbone):
    """WRN-d-k for 32x32 images.

    A plain 3x3 stem convolution to 16 channels, three stages of
    pre-activation basic blocks with widths ``16k, 32k, 64k`` and strides
    1, 2, 2, then the BN-ReLU that closes the pre-activation design. A
    network of depth ``6n + 4`` has ``n`` blocks per stage. WRN-40-2 and
    WRN-40-1 are ``depth=40`` with ``widen_factor=2`` and ``1``.

    The output of the last stage is taken after that final BN-ReLU, so it is
    the map the classifier pools; earlier stages give the raw (not yet
    activated) block outputs.

    Args:
        depth (int): Number of weighted layers, ``6n + 4`` with n >= 1.
            Defaults to 40.
        widen_factor (int): Width multiplier k. Defaults to 2.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(2, )``.
        norm_cfg (dict): Normalization layer config. Defaults to
            ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions and unit-scale norms.

    Example:
        >>> import torch
        >>> net = CifarWideResNet(depth=40, widen_factor=2,
        ...                       out_indices=(0, 1, 2))
        >>> [tuple(f.shape) for f in net(torch.rand(2, 3, 32, 32))]
        [(2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8)]
    """

    def __init__(
        self,
        depth: int = 40,
        widen_factor: int = 2,
        out_indices: Sequence[int] = (2,),
        norm_cfg: dict = dict(type='BN'),
        init_cfg=CIFAR_INIT_CFG,
    ):
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f'CifarWideResNet depth must be 6n+4 with n >= 1, got {depth}')
        if widen_factor < 1:
            raise ValueError(f'CifarWideResNet widen_factor must be >= 1, got {widen_factor}')
        super().__init__(out_indices, 3, init_cfg)
        self.depth = depth
        self.widen_factor = widen_factor
        blocks_per_stage = (depth - 4) // 6
        stem_channels = 16

        self.stem = nn.Conv2d(3, stem_channels, kernel_size=3, padding=1, bias=False)
        self.stages = nn.ModuleList()
        in_channels = stem_channels
        for index, base_width in enumerate((16, 32, 64)):
            out_channels = base_width * widen_factor
            blocks = []
            for block_index in range(blocks_per_stage):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(PreActBasicBlock(in_channels, out_channels, stride, norm_cfg))
                in_channels = out_channels
            self.stages.append(nn.Sequential(*blocks))
        self.final_act = nn.Sequential(
            build_norm_layer(norm_cfg, in_channels)[1], nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (torch.Tensor): Images of shape (N, 3, 32, 32).

        Returns:
            tuple[torch.Tensor]: One (N, C_i, H_i, W_i) map per entry of
            ``out_indices``; the last stage's map is BN-ReLU activated.
        """
        x = self.stem(x)
        outs = []
        last = len(self.stages) - 1
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index == last:
                x = self.final_act(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
