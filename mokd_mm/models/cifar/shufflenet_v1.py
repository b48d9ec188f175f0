"""ShuffleNet-V1 in the CIFAR form of the CRD / RepDistiller benchmark."""

from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.utils import channel_shuffle
from mmpretrain.registry import MODELS

from .base import CIFAR_INIT_CFG, CifarBackbone


class CifarShuffleUnit(nn.Module):
    """ShuffleNet-V1 unit as used in the CRD CIFAR model.

    Branch: 1x1 group conv to a quarter of the branch width (BN-ReLU),
    channel shuffle, 3x3 depthwise conv with ``stride`` (BN-ReLU), 1x1 group
    conv (BN). A stride-1 unit adds the input back; a stride-2 unit
    concatenates the branch with a 3x3 average-pooled copy of the input, so
    its branch produces ``out_channels - in_channels`` channels. ReLU closes
    the unit.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): 1 (residual add) or 2 (downsample and concatenate).
        groups (int): Groups of the 1x1 convolutions.
        group_first_conv (bool): Whether the first 1x1 convolution is
            grouped; the very first unit after the stem uses a dense one.
        norm_cfg (dict): Normalization layer config.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        groups: int,
        group_first_conv: bool,
        norm_cfg: dict,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'CifarShuffleUnit stride must be 1 or 2, got {stride}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError(
                'A stride-1 CifarShuffleUnit keeps the width: in_channels '
                f'{in_channels} != out_channels {out_channels}'
            )
        branch_channels = out_channels - in_channels if stride == 2 else out_channels
        mid_channels = branch_channels // 4
        self.first_groups = groups if group_first_conv else 1

        self.compress = ConvModule(
            in_channels, mid_channels, kernel_size=1, groups=self.first_groups, norm_cfg=norm_cfg
        )
        self.depthwise = ConvModule(
            mid_channels,
            mid_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            groups=mid_channels,
            norm_cfg=norm_cfg,
        )
        self.expand = ConvModule(
            mid_channels,
            branch_channels,
            kernel_size=1,
            groups=groups,
            norm_cfg=norm_cfg,
            act_cfg=None,
        )
        self.shortcut_pool = (
            nn.AvgPool2d(kernel_size=3, stride=2, padding=1) if stride == 2 else None
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x (torch.Tensor): (N, C_in, H, W).

        Returns:
            torch.Tensor: (N, C_out, H / stride, W / stride).
        """
        out = self.compress(x)
        if self.first_groups > 1:
            out = channel_shuffle(out, self.first_groups)
        out = self.expand(self.depthwise(out))
        if self.shortcut_pool is None:
            out = out + x
        else:
            out = torch.cat([out, self.shortcut_pool(x)], dim=1)
        return self.act(out)


@MODELS.register_module()
class CifarShuffleNetV1(CifarBackbone):
    """ShuffleNet-V1 (Zhang et al., 2018) for 32x32 images.

    The CRD / RepDistiller CIFAR form: a 1x1 stem convolution to 24 channels
    (BN-ReLU, stride 1, no max-pool), then three stages of 4, 8 and 4 units
    whose first unit halves the resolution (32 -> 16 -> 8 -> 4). Stage
    widths follow the paper's table for the number of groups; the benchmark
    student "ShuffleNet-V1" is ``groups=3`` (240, 480, 960).

    Args:
        groups (int): Groups of the 1x1 convolutions, one of 1, 2, 3.
            Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(2, )``.
        norm_cfg (dict): Normalization layer config. Defaults to
            ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions and unit-scale norms.

    Example:
        >>> import torch
        >>> net = CifarShuffleNetV1(out_indices=(0, 1, 2))
        >>> [tuple(f.shape) for f in net(torch.rand(2, 3, 32, 32))]
        [(2, 240, 16, 16), (2, 480, 8, 8), (2, 960, 4, 4)]
    """

    # Groups -> stage widths. Larger group counts of the paper's table do
    # not divide the bottleneck width of this unit design.
    arch_widths = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960)}
    stage_blocks = (4, 8, 4)
    stem_channels = 24

    def __init__(
        self,
        groups: int = 3,
        out_indices: Sequence[int] = (2,),
        norm_cfg: dict = dict(type='BN'),
        init_cfg=CIFAR_INIT_CFG,
    ):
        if groups not in self.arch_widths:
            raise ValueError(
                f'CifarShuffleNetV1 groups must be one of {sorted(self.arch_widths)}, got {groups}'
            )
        super().__init__(out_indices, len(self.stage_blocks), init_cfg)
        self.groups = groups
        self.stem = ConvModule(3, self.stem_channels, kernel_size=1, norm_cfg=norm_cfg)

        self.stages = nn.ModuleList()
        in_channels = self.stem_channels
        for stage_index, (out_channels, num_units) in enumerate(
            zip(self.arch_widths[groups], self.stage_blocks)
        ):
            units = []
            for unit_index in range(num_units):
                units.append(
                    CifarShuffleUnit(
                        in_channels,
                        out_channels,
                        stride=2 if unit_index == 0 else 1,
                        groups=groups,
                        group_first_conv=stage_index > 0 or unit_index > 0,
                        norm_cfg=norm_cfg,
                    )
                )
                in_channels = out_channels
            self.stages.append(nn.Sequential(*units))
