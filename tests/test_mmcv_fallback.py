"""mmcv without CUDA ops: the two kernel call sites take the PyTorch path,
with one log line each, and give the kernels' results."""

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import MultiScaleDeformableAttention, get_compiling_cuda_version
from mmcv.ops import multi_scale_deform_attn as deform_attn
from mmdet.models.losses import FocalLoss
from mmdet.models.losses import focal_loss as mmdet_focal

from mokd_mm import mmcv_fallback

WITHOUT_KERNELS = get_compiling_cuda_version() == 'not available'


def test_installed_exactly_when_mmcv_lacks_cuda_ops():
    assert (
        deform_attn.MultiScaleDeformableAttnFunction
        is mmcv_fallback.DeformableAttentionWithoutKernel
    ) == WITHOUT_KERNELS
    assert (
        mmdet_focal._sigmoid_focal_loss is mmcv_fallback.sigmoid_focal_loss_without_kernel
    ) == WITHOUT_KERNELS


def _attention_inputs():
    torch.manual_seed(0)
    shapes = torch.tensor([[6, 5], [3, 3]])
    value = torch.randn(2, 39, 4, 8)
    locations = torch.rand(2, 7, 4, 2, 3, 2)
    weights = torch.rand(2, 7, 4, 2, 3).softmax(-1)
    return value, shapes, torch.tensor([0, 30]), locations, weights


def test_the_stand_ins_compute_what_the_kernels_compute(monkeypatch):
    logged = []
    monkeypatch.setattr(mmcv_fallback, 'print_log', lambda msg, **kw: logged.append(msg))
    monkeypatch.setattr(mmcv_fallback, '_announced', set())
    value, shapes, start, locations, weights = _attention_inputs()
    for _ in range(2):
        out = mmcv_fallback.DeformableAttentionWithoutKernel.apply(
            value, shapes, start, locations, weights, 64
        )
    torch.testing.assert_close(
        out, deform_attn.multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    )
    pred = torch.randn(7, 5)
    target = torch.tensor([0, 4, 5, 5, 2, 1, 3])  # 5: background
    for _ in range(2):
        loss = mmcv_fallback.sigmoid_focal_loss_without_kernel(
            pred, target, 2.0, 0.25, None, 'none'
        )
    one_hot = F.one_hot(target, 6)[:, :5].float()
    torch.testing.assert_close(
        loss,
        mmdet_focal.py_sigmoid_focal_loss(
            pred, one_hot, None, gamma=2.0, alpha=0.25, reduction='none'
        ),
    )
    assert len(logged) == 2 and 'deformable attention' in logged[0] and 'focal' in logged[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_on_a_gpu_the_modules_match_the_cpu():
    """Whether or not mmcv has CUDA ops, mmcv's attention and mmdet's focal
    loss give the CPU results on CUDA tensors (fp32)."""
    torch.manual_seed(0)
    focal = FocalLoss(loss_weight=2.0)
    pred, target, weight = torch.randn(7, 5), torch.tensor([0, 4, 5, 5, 2, 1, 3]), torch.rand(7)
    torch.testing.assert_close(
        focal(pred.cuda(), target.cuda(), weight.cuda(), avg_factor=3.0).cpu(),
        focal(pred, target, weight, avg_factor=3.0),
    )
    attn = MultiScaleDeformableAttention(
        embed_dims=32, num_levels=1, num_points=2, batch_first=True
    ).eval()
    kwargs = dict(
        query=torch.randn(1, 3, 32),
        value=torch.randn(1, 12, 32),
        reference_points=torch.rand(1, 3, 1, 2),
        spatial_shapes=torch.tensor([[3, 4]]),
        level_start_index=torch.tensor([0]),
    )
    with torch.no_grad():
        cpu_out = attn(**kwargs)
        gpu_out = attn.cuda()(**{k: v.cuda() for k, v in kwargs.items()})
    torch.testing.assert_close(gpu_out.cpu(), cpu_out, atol=1e-4, rtol=1e-4)
