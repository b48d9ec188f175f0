"""PyTorch paths for mmcv's CUDA kernels when the installed mmcv has none.

mmcv's ``MultiScaleDeformableAttention`` and mmdet's ``FocalLoss`` call
mmcv's compiled kernels for every CUDA tensor; an mmcv built without CUDA
ops (e.g. from source on a machine without the CUDA toolkit) then fails at
the first training step. When ``mokd_mm`` is imported and mmcv reports no
CUDA ops, the two call sites get a stand-in that runs the PyTorch path mmcv
and mmdet themselves use for CPU tensors, and says so once in the log the
first time a CUDA tensor takes it. With CUDA ops present nothing changes.
Configs name mmdet's and mmcv's own types; nothing is to configure.
"""

import logging

import torch.nn.functional as F
from mmengine.logging import print_log

_announced = set()


def _announce(op: str) -> None:
    if op not in _announced:
        _announced.add(op)
        print_log(
            f'mmcv was built without CUDA ops: {op} on CUDA tensors takes the PyTorch '
            'path (slower)',
            logger='current',
            level=logging.WARNING,
        )


class DeformableAttentionWithoutKernel:
    """Stands in for ``MultiScaleDeformableAttnFunction`` (its ``apply``
    signature) and runs ``multi_scale_deformable_attn_pytorch``."""

    @staticmethod
    def apply(
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights, im2col_step
    ):
        from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

        _announce('multi-scale deformable attention')
        return multi_scale_deformable_attn_pytorch(
            value, spatial_shapes, sampling_locations, attention_weights
        )


def sigmoid_focal_loss_without_kernel(
    pred, target, gamma=2.0, alpha=0.25, weight=None, reduction='mean'
):
    """Stands in for mmcv's ``sigmoid_focal_loss`` (class-index targets, the
    background index ``num_classes`` all zeros) through mmdet's PyTorch focal
    loss."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    _announce('the sigmoid focal loss')
    num_classes = pred.size(1)
    one_hot = F.one_hot(target, num_classes + 1)[:, :num_classes].type_as(pred)
    return py_sigmoid_focal_loss(
        pred, one_hot, weight, gamma=gamma, alpha=alpha, reduction=reduction
    )


def install() -> bool:
    """Put the stand-ins in place if mmcv has no CUDA ops; returns whether
    it did."""
    from mmcv.ops import get_compiling_cuda_version

    if get_compiling_cuda_version() != 'not available':
        return False
    import mmcv.ops.multi_scale_deform_attn as deform_attn
    import mmdet.models.losses.focal_loss as focal_loss

    deform_attn.MultiScaleDeformableAttnFunction = DeformableAttentionWithoutKernel
    focal_loss._sigmoid_focal_loss = sigmoid_focal_loss_without_kernel
    return True
