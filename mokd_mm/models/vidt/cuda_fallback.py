# Copyright (c) mokd_mm contributors. All rights reserved.
"""PyTorch fallbacks for mmcv ops that ViDT runs on GPU tensors.

mmcv's multi-scale deformable attention and mmdet's sigmoid focal loss call
mmcv's compiled kernels on every CUDA tensor. When the installed mmcv was
compiled without CUDA, those calls fail at run time. The subclasses here
check once whether the CUDA ops exist and otherwise take the pure-PyTorch
paths that mmcv and mmdet use for CPU tensors, with a single warning.
"""

import functools
import logging

import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttention,
    MultiScaleDeformableAttnFunction,
    multi_scale_deformable_attn_pytorch,
)
from mmdet.models.losses import FocalLoss
from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import Tensor


@functools.lru_cache(maxsize=None)
def mmcv_cuda_ops_available() -> bool:
    """Whether the installed mmcv has its CUDA ops (compiled kernels).

    Warns once (the result is cached) when it does not.
    """
    from mmcv.ops import get_compiling_cuda_version

    # mmcv reports 'not available' when its ops were built without CUDA.
    available = get_compiling_cuda_version() != 'not available'
    if not available:
        print_log(
            'mmcv was compiled without CUDA ops: deformable attention and '
            'focal loss on GPU tensors use slower pure-PyTorch paths.',
            logger='current',
            level=logging.WARNING,
        )
    return available


class FallbackMultiScaleDeformableAttention(MultiScaleDeformableAttention):
    """mmcv's multi-scale deformable attention with a PyTorch fallback on GPU.

    Same parameters, arguments and outputs as
    :class:`mmcv.ops.MultiScaleDeformableAttention` (batch-first only).
    CPU tensors use the PyTorch path; CUDA tensors use the compiled kernel
    when mmcv has it and the PyTorch path otherwise.
    """

    def forward(
        self,
        query: Tensor,
        value: Tensor,
        reference_points: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        query_pos: Tensor = None,
        key_padding_mask: Tensor = None,
        identity: Tensor = None,
        **kwargs,
    ) -> Tensor:
        """Sample the value maps around the reference points.

        Args:
            query (Tensor): Queries of shape (B, N, C).
            value (Tensor): Flattened multi-level values of shape (B, S, C).
            reference_points (Tensor): Normalized points (B, N, levels, 2)
                or boxes (B, N, levels, 4) in (cx, cy[, w, h]).
            spatial_shapes (Tensor): (levels, 2) as (h, w).
            level_start_index (Tensor): (levels,) start of each level in S.
            query_pos (Tensor, optional): Added to ``query`` (B, N, C).
            key_padding_mask (Tensor, optional): (B, S), ``True`` on padding.
            identity (Tensor, optional): Residual (B, N, C); ``query`` when
                ``None``.

        Returns:
            Tensor: Shape (B, N, C).
        """
        if not self.batch_first:
            raise ValueError('FallbackMultiScaleDeformableAttention needs batch_first=True')
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        B, num_query, _ = query.shape
        num_value = value.shape[1]

        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(B, num_value, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(
            B, num_query, self.num_heads, self.num_levels, self.num_points, 2
        )
        weights = (
            self.attention_weights(query)
            .view(B, num_query, self.num_heads, self.num_levels * self.num_points)
            .softmax(-1)
            .view(B, num_query, self.num_heads, self.num_levels, self.num_points)
        )
        if reference_points.shape[-1] == 2:
            # Offsets are in pixels of each level.
            level_wh = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            locations = (
                reference_points[:, :, None, :, None, :]
                + offsets / level_wh[None, None, None, :, None, :]
            )
        elif reference_points.shape[-1] == 4:
            # Offsets are relative to the reference box size.
            locations = (
                reference_points[:, :, None, :, None, :2]
                + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5
            )
        else:
            raise ValueError(
                f'reference_points must end with 2 or 4 coordinates, got {reference_points.shape}'
            )

        if value.is_cuda and mmcv_cuda_ops_available():
            output = MultiScaleDeformableAttnFunction.apply(
                value, spatial_shapes, level_start_index, locations, weights, self.im2col_step
            )
        else:
            output = multi_scale_deformable_attn_pytorch(value, spatial_shapes, locations, weights)
        return self.dropout(self.output_proj(output)) + identity


@MODELS.register_module()
class FallbackFocalLoss(FocalLoss):
    """mmdet's :class:`FocalLoss` that avoids mmcv's CUDA kernel when absent.

    Same arguments and results. For class-index targets on CUDA tensors
    without mmcv CUDA ops, the targets are one-hot encoded (the background
    index ``num_classes`` becomes all zeros), which routes the loss through
    mmdet's PyTorch implementation, as on CPU.
    """

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        weight: Tensor = None,
        avg_factor: float = None,
        reduction_override: str = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Logits (N, C).
            target (Tensor): Class indices (N,) in [0, C] (C: background)
                or one-hot targets (N, C).
            weight (Tensor, optional): Per-sample or per-element weights.
            avg_factor (float, optional): Normalizer of the loss.
            reduction_override (str, optional): 'none', 'mean' or 'sum'.

        Returns:
            Tensor: The loss.
        """
        if (
            self.use_sigmoid
            and not self.activated
            and pred.is_cuda
            and target.dim() != pred.dim()
            and not mmcv_cuda_ops_available()
        ):
            num_classes = pred.size(1)
            target = F.one_hot(target, num_classes + 1)[:, :num_classes]
        return super().forward(pred, target, weight, avg_factor, reduction_override)
