"""The DeiT-family distillation losses against their definitions:
DeiT's hard-label distillation and VkD's feature loss."""
import pytest
import torch
import torch.nn.functional as F

from mokd_mm.core import HardDistillationLoss, TeacherLayerNormFeatureLoss


def test_hard_distillation_is_cross_entropy_against_teacher_argmax():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(8, 10, generator=generator, requires_grad=True)
    teacher = torch.randn(8, 10, generator=generator)
    loss = HardDistillationLoss(loss_weight=0.5)(student, teacher)
    expected = -F.log_softmax(student, 1)[torch.arange(8),
                                           teacher.argmax(1)].mean()
    torch.testing.assert_close(loss, 0.5 * expected)
    loss.backward()
    assert student.grad.abs().sum() > 0


def test_hard_distillation_ignores_teacher_confidence():
    """Only the teacher's top-1 class matters, not its scores."""
    student = torch.randn(4, 6)
    teacher = torch.randn(4, 6)
    sharper = teacher * 10 + 3
    loss = HardDistillationLoss()
    torch.testing.assert_close(loss(student, teacher), loss(student, sharper))
    # A student that agrees confidently with the teacher has a small loss.
    agreeing = F.one_hot(teacher.argmax(1), 6).float() * 20
    assert loss(agreeing, teacher) < 1e-6 < loss(student, teacher)


def test_hard_distillation_sums_streams_and_checks_shapes():
    s1, t1, s2, t2 = (torch.randn(3, 5) for _ in range(4))
    loss = HardDistillationLoss()
    torch.testing.assert_close(loss([s1, s2], [t1, t2]),
                               loss(s1, t1) + loss(s2, t2))
    with pytest.raises(ValueError, match='differ'):
        loss(torch.randn(3, 5), torch.randn(3, 6))


def test_teacher_layer_norm_feature_loss_normalises_the_teacher_only():
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(4, 32, generator=generator)
    teacher = torch.rand(4, 32, generator=generator) * 50 + 10
    mean = teacher.mean(1, keepdim=True)
    std = teacher.var(1, unbiased=False, keepdim=True).add(1e-5).sqrt()
    expected = F.smooth_l1_loss(student, (teacher - mean) / std)
    loss = TeacherLayerNormFeatureLoss()
    torch.testing.assert_close(loss(student, teacher), expected)
    # Scaling and shifting the teacher per sample changes nothing ...
    torch.testing.assert_close(loss(student, 3 * teacher + 7), expected)
    # ... but the student is not normalised.
    assert not torch.allclose(loss(3 * student, teacher), expected)
