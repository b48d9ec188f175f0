"""The distillation losses of mokd_mm.core against their definitions."""

import pytest
import torch
import torch.nn.functional as F

from mokd_mm.core import (
    HardDistillationLoss,
    KLDivergenceLoss,
    SigmoidKLDivergenceLoss,
    StandardizedFeatureLoss,
    TeacherLayerNormFeatureLoss,
    TokenMatchingLoss,
)


def test_kl_divergence_against_definition():
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    temperature = 2.0
    p_t = F.softmax(t / temperature, -1)
    expected = (p_t * (p_t.log() - F.log_softmax(s / temperature, -1))).sum(-1).mean()
    loss = KLDivergenceLoss(temperature=temperature, loss_weight=0.5)(s, t)
    assert loss.item() == pytest.approx(0.5 * temperature**2 * expected.item(), rel=1e-5)
    assert KLDivergenceLoss()(t, t).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match='temperature'):
        KLDivergenceLoss(temperature=0)


def test_standardized_feature_loss_is_scale_and_shift_invariant_per_channel():
    t = torch.randn(6, 5, 8)
    s = t * torch.linspace(0.5, 3, 8) + torch.arange(8.0)  # per-channel affine
    loss = StandardizedFeatureLoss()
    assert loss(s, t).item() == pytest.approx(0.0, abs=1e-4)
    assert loss(torch.randn(6, 5, 8), t).item() > 0.1
    # L1 variant; maps are standardized per channel over (B, H, W).
    m_t = torch.randn(2, 8, 3, 3)
    m_s = 2 * m_t + 1
    assert StandardizedFeatureLoss(criterion='l1')(m_s, m_t).item() == pytest.approx(0, abs=1e-4)
    with pytest.raises(ValueError, match='criterion'):
        StandardizedFeatureLoss(criterion='l2')


def test_token_matching_sqrt_of_summed_mean_distances():
    s1, t1 = torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)
    t1[0, 0] = torch.tensor([3.0, 4.0, 0.0])  # distances 5 and 0 -> mean 2.5
    s2, t2 = torch.zeros(1, 1, 2), torch.tensor([[[0.0, 1.5]]])  # mean 1.5
    loss = TokenMatchingLoss(loss_weight=4.0)([s1, s2], [t1, t2])
    assert loss.item() == pytest.approx(4.0 * (2.5 + 1.5) ** 0.5)


def test_streams_must_match():
    with pytest.raises(ValueError, match='2 student and 1 teacher'):
        StandardizedFeatureLoss()([torch.randn(2, 3)] * 2, [torch.randn(2, 3)])
    with pytest.raises(ValueError, match='shape'):
        TokenMatchingLoss()(torch.randn(2, 3), torch.randn(2, 4))


def test_sigmoid_kl_against_bernoulli_definition():
    s, t = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    p, q = torch.sigmoid(t / 2), torch.sigmoid(s / 2)
    expected = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).sum(-1).mean() * 4
    loss = SigmoidKLDivergenceLoss(temperature=2.0)(s, t)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert SigmoidKLDivergenceLoss()(t, t).item() == pytest.approx(0.0, abs=1e-6)


def test_hard_distillation_is_cross_entropy_against_teacher_argmax():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(8, 10, generator=generator, requires_grad=True)
    teacher = torch.randn(8, 10, generator=generator)
    loss = HardDistillationLoss(loss_weight=0.5)(student, teacher)
    expected = -F.log_softmax(student, 1)[torch.arange(8), teacher.argmax(1)].mean()
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
    torch.testing.assert_close(loss([s1, s2], [t1, t2]), loss(s1, t1) + loss(s2, t2))
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
