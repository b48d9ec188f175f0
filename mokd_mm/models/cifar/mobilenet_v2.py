"""MobileNet-V2 in the CIFAR form of the CRD / RepDistiller benchmark."""

from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.registry import MODELS

from .base import CIFAR_INIT_CFG, CifarBackbone


class ExpandedInvertedResidual(nn.Module):
    """Inverted residual block that always has its 1x1 expansion.

    1x1 expand (BN-ReLU), 3x3 depthwise with ``stride`` (BN-ReLU), 1x1
    linear projection (BN). Unlike MobileNet-V2 for ImageNet, the expansion
    convolution is kept when ``expand_ratio == 1``, as in the CRD model. The
    input is added back when the block keeps the shape.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise convolution.
        expand_ratio (int): Hidden width is ``in_channels * expand_ratio``.
        norm_cfg (dict): Normalization layer config.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, expand_ratio: int, norm_cfg: dict
    ):
        super().__init__()
        hidden_channels = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = ConvModule(in_channels, hidden_channels, kernel_size=1, norm_cfg=norm_cfg)
        self.depthwise = ConvModule(
            hidden_channels,
            hidden_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            groups=hidden_channels,
            norm_cfg=norm_cfg,
        )
        self.project = ConvModule(
            hidden_channels, out_channels, kernel_size=1, norm_cfg=norm_cfg, act_cfg=None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x (torch.Tensor): (N, C_in, H, W).

        Returns:
            torch.Tensor: (N, C_out, H / stride, W / stride).
        """
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


@MODELS.register_module()
class CifarMobileNetV2(CifarBackbone):
    """MobileNet-V2 for 32x32 images as used in CRD / RepDistiller.

    A stride-2 3x3 stem to ``int(32 * widen_factor)`` channels, seven stages
    of inverted residual blocks, and a final 1x1 convolution to 1280 channels
    (``int(1280 * widen_factor)`` when ``widen_factor > 1``). Stage widths
    are ``int(c * widen_factor)`` for c in (16, 24, 32, 64, 96, 160, 320),
    without rounding to multiples of 8. A 32x32 input ends at 2x2. The
    benchmark student "MobileNet-V2" is ``widen_factor=0.5,
    expand_ratio=6`` (the defaults).

    Stage indices for ``out_indices``: 0-6 are the inverted residual stages
    (maps of 16, 16, 8, 4, 4, 2, 2 pixels for a 32x32 input), 7 is the final
    1x1 convolution.

    Args:
        widen_factor (float): Width multiplier. Defaults to 0.5.
        expand_ratio (int): Expansion of every stage but the first (which
            uses 1). Defaults to 6.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(7, )``.
        norm_cfg (dict): Normalization layer config. Defaults to
            ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions and unit-scale norms.

    Example:
        >>> import torch
        >>> net = CifarMobileNetV2()
        >>> tuple(net(torch.rand(2, 3, 32, 32))[0].shape)
        (2, 1280, 2, 2)
    """

    # (output channels before widening, blocks, stride of the first block)
    stage_settings = (
        (16, 1, 1),
        (24, 2, 1),
        (32, 3, 2),
        (64, 4, 2),
        (96, 3, 1),
        (160, 3, 2),
        (320, 1, 1),
    )

    def __init__(
        self,
        widen_factor: float = 0.5,
        expand_ratio: int = 6,
        out_indices: Sequence[int] = (7,),
        norm_cfg: dict = dict(type='BN'),
        init_cfg=CIFAR_INIT_CFG,
    ):
        if widen_factor <= 0:
            raise ValueError(f'CifarMobileNetV2 widen_factor must be > 0, got {widen_factor}')
        super().__init__(out_indices, len(self.stage_settings) + 1, init_cfg)
        self.widen_factor = widen_factor
        in_channels = int(32 * widen_factor)
        self.stem = ConvModule(
            3, in_channels, kernel_size=3, stride=2, padding=1, norm_cfg=norm_cfg
        )

        self.stages = nn.ModuleList()
        for index, (channels, num_blocks, stride) in enumerate(self.stage_settings):
            out_channels = int(channels * widen_factor)
            blocks = []
            for block_index in range(num_blocks):
                blocks.append(
                    ExpandedInvertedResidual(
                        in_channels,
                        out_channels,
                        stride=stride if block_index == 0 else 1,
                        expand_ratio=1 if index == 0 else expand_ratio,
                        norm_cfg=norm_cfg,
                    )
                )
                in_channels = out_channels
            self.stages.append(nn.Sequential(*blocks))

        last_channels = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.stages.append(ConvModule(in_channels, last_channels, kernel_size=1, norm_cfg=norm_cfg))
