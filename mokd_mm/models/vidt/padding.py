"""Padding masks of ViDT: the pixel mask of a batch and the token masks of the
body's cross-attention stages and of the neck's levels.

Convention (DETR's, mmdet's): a mask is a bool tensor, ``True`` on padding.

Two ways to reduce the pixel mask to a token grid, picked by ViDT's
``padding_masks`` option:

* ``'official'`` (default): as the official ViDT code does, nearest-neighbour
  resizing (``F.interpolate``). In the body, the pixel mask is resized to the
  patch-embedding grid divided by ``2 ** (stages - cross-attention stages)``
  and resized again to each cross-attention stage's grid; in the neck, it is
  resized to each level's size. Converted official checkpoints then give the
  official outputs, whatever the batch.
* ``'batch_invariant'``: a token is padding only when every pixel it covers
  is (max-pooling with a rounded-up grid); the body's window attention
  ignores padded keys, padded tokens enter the patch mergings as zeros and
  the neck's GroupNorm takes its statistics from the image's tokens only, so
  an image's outputs do not depend on the batch it is padded into. Not what
  the official checkpoints were trained with.
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ('official', 'batch_invariant')
Size = Tuple[int, int]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f'padding_masks must be one of {MODES}, got {mode!r}')
    return mode


def padding_mask_from_samples(
    batch_data_samples: Optional[Sequence], device: torch.device
) -> Optional[Tensor]:
    """The pixel padding mask of a batch from its data samples.

    Each sample's ``img_shape`` is its valid (top-left) region inside the
    ``batch_input_shape`` of the padded batch tensor.

    Args:
        batch_data_samples (Sequence[DetDataSample], optional): ``None``
            means no information, treated as no padding.
        device (torch.device): of the returned mask.

    Returns:
        Tensor or None: (B, H, W), or ``None`` when no image is padded.
    """
    if not batch_data_samples:
        return None
    batch_h, batch_w = batch_data_samples[0].batch_input_shape
    img_shapes = [sample.img_shape[:2] for sample in batch_data_samples]
    if all(h == batch_h and w == batch_w for h, w in img_shapes):
        return None
    mask = torch.ones((len(img_shapes), batch_h, batch_w), dtype=torch.bool, device=device)
    for i, (h, w) in enumerate(img_shapes):
        mask[i, :h, :w] = False
    return mask


def nearest_token_mask(mask: Tensor, size: Size) -> Tensor:
    """``mask`` (B, H, W) resized to ``size`` by nearest neighbour, the
    official ViDT's reduction; (B, *size)."""
    return F.interpolate(mask[None].float(), size=size).to(torch.bool)[0]


def covered_token_mask(mask: Tensor, stride: int) -> Tensor:
    """A token is padding only when every pixel it covers is; the grid is
    ``ceil(H / stride) x ceil(W / stride)``, what corner-padding patch
    embedding and 2x2 patch merging produce; (B, ceil(H/s), ceil(W/s))."""
    valid = (~mask).unsqueeze(1).float()
    valid = F.max_pool2d(valid, stride, stride, ceil_mode=True)
    return valid.squeeze(1) == 0


def body_cross_attention_masks(
    mask: Optional[Tensor],
    mode: str,
    patch_grid: Size,
    stage_grids: Sequence[Size],
    cross_stages: Sequence[int],
) -> List[Optional[Tensor]]:
    """The token mask of each body stage: of the grid its [DET] tokens attend
    to in a cross-attention stage; in ``'batch_invariant'`` mode of every
    stage (its window attention ignores padding too); ``None`` elsewhere or
    without padding.

    Args:
        mask (Tensor, optional): the pixel mask (B, H, W).
        mode (str): ``'official'`` or ``'batch_invariant'``.
        patch_grid (tuple): (H, W) of the patch embedding (stride 4).
        stage_grids (Sequence[tuple]): (H, W) of each stage's tokens.
        cross_stages (Sequence[int]): the cross-attention stages.
    """
    masks: List[Optional[Tensor]] = [None] * len(stage_grids)
    if mask is None:
        return masks
    if mode == 'batch_invariant':
        return [covered_token_mask(mask, 4 * 2**i) for i in range(len(stage_grids))]
    divisor = 2 ** (len(stage_grids) - len(cross_stages))
    coarse = nearest_token_mask(mask, (patch_grid[0] // divisor, patch_grid[1] // divisor))
    for stage in cross_stages:
        grid = tuple(stage_grids[stage])
        masks[stage] = (
            coarse if tuple(coarse.shape[-2:]) == grid else nearest_token_mask(coarse, grid)
        )
    return masks


def neck_level_masks(
    mask: Optional[Tensor], mode: str, level_sizes: Sequence[Size], strides: Sequence[int]
) -> Optional[List[Tensor]]:
    """The token mask of each neck level (``None`` without padding): the
    pixel mask resized to the level (``'official'``) or the covered tokens
    at its stride (``'batch_invariant'``)."""
    if mask is None:
        return None
    if mode == 'official':
        return [nearest_token_mask(mask, tuple(size)) for size in level_sizes]
    return [covered_token_mask(mask, stride) for stride in strides]
