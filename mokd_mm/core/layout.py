"""Where the channels of a feature are: one rule for the connectors, the
losses and the taps.

Features are pooled vectors ``(B, C)``, token sequences ``(B, N, C)`` or
maps ``(B, C, H, W)``: channels last, except for 4-D maps, whose channels
are dim 1 (PyTorch's NCHW).
"""

from typing import Callable

import torch

__all__ = ['is_map', 'channel_size', 'apply_on_channels', 'to_rows', 'pool']


def is_map(x: torch.Tensor) -> bool:
    """Whether ``x`` is a (B, C, H, W) map (channels at dim 1)."""
    return x.dim() == 4


def channel_size(x: torch.Tensor) -> int:
    """The number of channels of ``x``."""
    return x.shape[1] if is_map(x) else x.shape[-1]


def apply_on_channels(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn`` (acting on the last dim) applied to the channels of ``x``;
    maps are moved to channels-last and back."""
    if is_map(x):
        return fn(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return fn(x)


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """Every sample and position as a row of channels, (M, C)."""
    if is_map(x):
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    return x.reshape(-1, x.shape[-1])


def pool(x: torch.Tensor, skip_tokens: int = 0) -> torch.Tensor:
    """The mean over positions, (B, C): over H and W of a map, over the
    tokens of a sequence after its first ``skip_tokens``."""
    if is_map(x):
        return x.mean(dim=(2, 3))
    if x.dim() != 3:
        raise ValueError(
            f'pooling needs (B, N, C) tokens or (B, C, H, W) maps, got {tuple(x.shape)}'
        )
    return x[:, skip_tokens:].mean(dim=1)
