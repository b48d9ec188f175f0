"""The stem-then-stages skeleton shared by the CIFAR backbones."""

from typing import Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone

# Kaiming-normal convolutions (fan-out, ReLU gain) and unit-scale norms: the
# initialization the CRD / RepDistiller CIFAR models use.
CIFAR_INIT_CFG = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


def resolve_out_indices(
    owner: str, out_indices: Union[int, Sequence[int]], num_stages: int
) -> Tuple[int, ...]:
    """Turn ``out_indices`` into non-negative stage indices.

    Args:
        owner (str): Name of the backbone, used in the error message.
        out_indices (int | Sequence[int]): Stage indices; negative ones count
            from the last stage.
        num_stages (int): Number of stages the backbone has.

    Returns:
        tuple[int]: The indices, each in ``[0, num_stages)``.

    Raises:
        ValueError: If an index lies outside ``[-num_stages, num_stages)``.
    """
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    resolved = []
    for index in out_indices:
        if not -num_stages <= index < num_stages:
            raise ValueError(
                f'{owner} has {num_stages} stages: out_indices must lie in '
                f'[{-num_stages}, {num_stages - 1}], got {index}'
            )
        resolved.append(index % num_stages)
    return tuple(resolved)


class CifarBackbone(BaseBackbone):
    """A backbone made of ``self.stem`` followed by ``self.stages``.

    Subclasses build ``self.stem`` (a module) and ``self.stages`` (an
    ``nn.ModuleList``) in their ``__init__``; the forward pass runs the stem,
    then every stage in order, and returns the outputs of the stages named in
    ``out_indices``.

    Args:
        out_indices (Sequence[int]): Stages whose outputs are returned.
        num_stages (int): Number of entries ``self.stages`` will hold.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    def __init__(self, out_indices: Sequence[int], num_stages: int, init_cfg=None):
        super().__init__(init_cfg)
        self.out_indices = resolve_out_indices(type(self).__name__, out_indices, num_stages)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Run the stem and the stages.

        Args:
            x (torch.Tensor): Images of shape (N, 3, H, W), H = W = 32 for
                CIFAR.

        Returns:
            tuple[torch.Tensor]: One (N, C_i, H_i, W_i) map per entry of
            ``out_indices``, in stage order.
        """
        x = self.stem(x)
        outs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
