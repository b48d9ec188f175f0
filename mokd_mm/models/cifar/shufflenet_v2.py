"""ShuffleNet-V2 in the CIFAR form of the CRD / RepDistiller benchmark."""

from typing import Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.backbones.shufflenet_v2 import InvertedResidual
from mmpretrain.registry import MODELS

from .base import CIFAR_INIT_CFG, CifarBackbone


@MODELS.register_module()
class CifarShuffleNetV2(CifarBackbone):
    """ShuffleNet-V2 (Ma et al., 2018) for 32x32 images.

    The CRD / RepDistiller CIFAR form: a 1x1 stem convolution to 24 channels
    (BN-ReLU, stride 1, no max-pool), three stages of 4, 8 and 4 ShuffleNet-V2
    units (the first one downsamples: 32 -> 16 -> 8 -> 4) and a final 1x1
    convolution (BN-ReLU). The units are mmpretrain's ``InvertedResidual``,
    which has the same layout as the CRD blocks. The benchmark student
    "ShuffleNet-V2" is ``widen_factor=1.0`` (116, 232, 464, then 1024).

    Stage indices for ``out_indices``: 0-2 are the unit stages, 3 is the
    final 1x1 convolution.

    Args:
        widen_factor (float): One of 0.5, 1.0, 1.5, 2.0. Defaults to 1.0.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to ``(3, )``.
        norm_cfg (dict): Normalization layer config. Defaults to
            ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Kaiming-normal convolutions and unit-scale norms.

    Example:
        >>> import torch
        >>> net = CifarShuffleNetV2(out_indices=(0, 1, 2, 3))
        >>> [tuple(f.shape) for f in net(torch.rand(2, 3, 32, 32))]
        [(2, 116, 16, 16), (2, 232, 8, 8), (2, 464, 4, 4), (2, 1024, 4, 4)]
    """

    # Width multiplier -> (three stage widths, final convolution width).
    arch_widths = {
        0.5: ((48, 96, 192), 1024),
        1.0: ((116, 232, 464), 1024),
        1.5: ((176, 352, 704), 1024),
        2.0: ((244, 488, 976), 2048),
    }
    stage_blocks = (4, 8, 4)
    stem_channels = 24

    def __init__(
        self,
        widen_factor: float = 1.0,
        out_indices: Sequence[int] = (3,),
        norm_cfg: dict = dict(type='BN'),
        init_cfg=CIFAR_INIT_CFG,
    ):
        if widen_factor not in self.arch_widths:
            raise ValueError(
                f'CifarShuffleNetV2 widen_factor must be one of '
                f'{sorted(self.arch_widths)}, got {widen_factor}'
            )
        super().__init__(out_indices, len(self.stage_blocks) + 1, init_cfg)
        self.widen_factor = widen_factor
        stage_widths, last_channels = self.arch_widths[widen_factor]
        self.stem = ConvModule(3, self.stem_channels, kernel_size=1, norm_cfg=norm_cfg)

        self.stages = nn.ModuleList()
        in_channels = self.stem_channels
        for out_channels, num_units in zip(stage_widths, self.stage_blocks):
            units = []
            for unit_index in range(num_units):
                units.append(
                    InvertedResidual(
                        in_channels,
                        out_channels,
                        stride=2 if unit_index == 0 else 1,
                        norm_cfg=norm_cfg,
                    )
                )
                in_channels = out_channels
            self.stages.append(nn.Sequential(*units))
        self.stages.append(ConvModule(in_channels, last_channels, kernel_size=1, norm_cfg=norm_cfg))
