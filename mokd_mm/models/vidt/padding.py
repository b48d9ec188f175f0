# Copyright (c) mokd_mm contributors. All rights reserved.
"""Padding masks shared by the ViDT body and the ViDT detector.

Convention (same as DETR and mmdet): a mask is a bool tensor that is
``True`` on padded positions and ``False`` on valid ones.
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def padding_mask_from_samples(
    batch_data_samples: Optional[Sequence], device: torch.device
) -> Optional[Tensor]:
    """Build the pixel padding mask of a batch from its data samples.

    Each sample's ``img_shape`` is its valid (top-left) region inside the
    ``batch_input_shape`` of the padded batch tensor.

    Args:
        batch_data_samples (Sequence[:obj:`DetDataSample`], optional): The
            samples of the batch. ``None`` means no information, which is
            treated as no padding.
        device (torch.device): Device of the returned mask.

    Returns:
        Tensor or None: Mask of shape (B, H, W), or ``None`` when no image
        of the batch is padded.
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


def downsample_padding_mask(mask: Tensor, stride: int) -> Tensor:
    """Reduce a pixel padding mask to the token grid of a given stride.

    A token is padding only when every pixel it covers is padding, and the
    grid is ``ceil(H / stride) x ceil(W / stride)``: the size that corner
    padding patch embedding and 2x2 patch merging produce.

    Args:
        mask (Tensor): Pixel mask of shape (B, H, W).
        stride (int): Pixels per token side.

    Returns:
        Tensor: Token mask of shape (B, ceil(H / stride), ceil(W / stride)).
    """
    valid = (~mask).unsqueeze(1).float()
    valid = F.max_pool2d(valid, stride, stride, ceil_mode=True)
    return valid.squeeze(1) == 0
