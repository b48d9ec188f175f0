"""Distillation losses.

Each loss is called as ``loss(student, teacher)`` with two tensors, or with
two equal-length sequences of tensors (several matched streams, e.g. the
feature levels of a detector); each returns a scalar multiplied by
``loss_weight``. A loss differentiates both sides as they come: which side
is a fixed target is the caller's rule (``DistillLoss``: a teacher feature
is a target unless a connector made it, whose teacher-side projection then
learns; run the teacher under ``torch.no_grad()`` in a loop of your own).
"""

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .layout import to_rows

__all__ = [
    'kl_divergence',
    'standardize',
    'standardized_feature_distance',
    'token_distance',
    'KLDivergenceLoss',
    'StandardizedFeatureLoss',
    'TokenMatchingLoss',
    'hard_distillation',
    'teacher_layer_norm_distance',
    'HardDistillationLoss',
    'TeacherLayerNormFeatureLoss',
    'sigmoid_kl_divergence',
    'SigmoidKLDivergenceLoss',
]

Streams = Union[torch.Tensor, Sequence[torch.Tensor]]


def kl_divergence(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over the
    samples (``batchmean``).

    Args:
        student_logits (Tensor): (B, K) or (B, N, K); the last dim is the
            class dim, all others are samples.
        teacher_logits (Tensor): same shape.
        temperature (float): T > 0.
    """
    _check_same_shape(student_logits, teacher_logits)
    k = student_logits.shape[-1]
    log_p_s = F.log_softmax(student_logits.reshape(-1, k) / temperature, -1)
    log_p_t = F.log_softmax(teacher_logits.reshape(-1, k) / temperature, -1)
    kl = F.kl_div(log_p_s, log_p_t, reduction='batchmean', log_target=True)
    return kl * temperature**2


def standardize(rows: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per channel over the rows; shape (M, C)."""
    mean = rows.mean(0, keepdim=True)
    var = rows.var(0, unbiased=False, keepdim=True)
    return (rows - mean) * torch.rsqrt(var + eps)


def standardized_feature_distance(
    student: torch.Tensor,
    teacher: torch.Tensor,
    criterion: str = 'smooth_l1',
    beta: float = 1.0,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Both features standardized per channel over all samples and
    positions of the batch, then compared element-wise (mean).

    Args:
        student (Tensor): (B, C), (B, N, C) or (B, C, H, W).
        teacher (Tensor): same shape.
        criterion (str): ``'smooth_l1'`` (with ``beta``) or ``'l1'``.
    """
    _check_same_shape(student, teacher)
    s = standardize(to_rows(student), eps)
    t = standardize(to_rows(teacher), eps)
    if criterion == 'smooth_l1':
        return F.smooth_l1_loss(s, t, beta=beta)
    if criterion == 'l1':
        return F.l1_loss(s, t)
    raise ValueError(f"criterion must be 'smooth_l1' or 'l1', got {criterion!r}")


def token_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matched tokens, averaged over tokens.

    Args:
        student (Tensor): (B, N, C), (B, C) or (B, C, H, W).
        teacher (Tensor): same shape.
    """
    _check_same_shape(student, teacher)
    return torch.linalg.vector_norm(to_rows(student) - to_rows(teacher), dim=-1).mean()


def _check_same_shape(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            f'student shape {tuple(student.shape)} and teacher shape {tuple(teacher.shape)} differ'
        )


def _pairs(student: Streams, teacher: Streams):
    if torch.is_tensor(student) != torch.is_tensor(teacher):
        raise TypeError('student and teacher must both be tensors or both be sequences of tensors')
    if torch.is_tensor(student):
        return [(student, teacher)]
    if len(student) != len(teacher) or len(student) == 0:
        raise ValueError(
            f'got {len(student)} student and {len(teacher)} '
            'teacher streams; they must match and be non-empty'
        )
    return list(zip(student, teacher))


class KLDivergenceLoss(nn.Module):
    """Logit distillation (Hinton et al.): :func:`kl_divergence` summed
    over streams.

    Args:
        temperature (float): T. Defaults to 1 (DeiT / VkD).
        loss_weight (float): Defaults to 1.
    """

    divergence = staticmethod(kl_divergence)

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, student: Streams, teacher: Streams) -> torch.Tensor:
        return self.loss_weight * sum(
            self.divergence(s, t, self.temperature) for s, t in _pairs(student, teacher)
        )


class StandardizedFeatureLoss(nn.Module):
    """Feature distillation on per-channel standardized features (the
    paper's "normalized L1"): :func:`standardized_feature_distance` summed
    over streams.

    Args:
        criterion (str): ``'smooth_l1'`` (default, VkD) or ``'l1'``.
        beta (float): smooth-L1 threshold. Defaults to 1.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, criterion: str = 'smooth_l1', beta: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        if criterion not in ('smooth_l1', 'l1'):
            raise ValueError(f"criterion must be 'smooth_l1' or 'l1', got {criterion!r}")
        self.criterion = criterion
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, student: Streams, teacher: Streams) -> torch.Tensor:
        return self.loss_weight * sum(
            standardized_feature_distance(s, t, self.criterion, self.beta)
            for s, t in _pairs(student, teacher)
        )


class TokenMatchingLoss(nn.Module):
    """ViDT's token-matching distillation: for each matched stream the mean
    Euclidean distance between corresponding tokens, summed over streams,
    then the square root of the sum.

    Args:
        loss_weight (float): Defaults to 1 (ViDT uses 4).
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: Streams, teacher: Streams) -> torch.Tensor:
        total = sum(token_distance(s, t) for s, t in _pairs(student, teacher))
        return self.loss_weight * torch.sqrt(total)


def hard_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """DeiT's hard-label distillation: the cross-entropy of the student
    against the teacher's top-1 class, averaged over the samples.

    Args:
        student_logits (Tensor): (B, K) or (B, N, K); the last dim is the
            class dim, all others are samples.
        teacher_logits (Tensor): same shape.
    """
    _check_same_shape(student_logits, teacher_logits)
    k = student_logits.shape[-1]
    targets = teacher_logits.reshape(-1, k).argmax(-1)
    return F.cross_entropy(student_logits.reshape(-1, k), targets)


def teacher_layer_norm_distance(
    student: torch.Tensor, teacher: torch.Tensor, beta: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Smooth-L1 (mean) between the student feature and the teacher feature
    layer-normalised over its channels without affine parameters (VkD's
    feature loss); the student feature is used as it is.

    Args:
        student (Tensor): (B, C), (B, N, C) or (B, C, H, W).
        teacher (Tensor): same shape.
    """
    _check_same_shape(student, teacher)
    t = to_rows(teacher)
    return F.smooth_l1_loss(to_rows(student), F.layer_norm(t, t.shape[-1:], eps=eps), beta=beta)


class HardDistillationLoss(nn.Module):
    """DeiT's hard-label distillation (``distillation_type='hard'``):
    :func:`hard_distillation` summed over streams. The teacher's argmax
    carries no gradient.

    Args:
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: Streams, teacher: Streams) -> torch.Tensor:
        return self.loss_weight * sum(hard_distillation(s, t) for s, t in _pairs(student, teacher))


class TeacherLayerNormFeatureLoss(nn.Module):
    """VkD's feature distillation: :func:`teacher_layer_norm_distance`
    summed over streams. Pair it with
    :class:`~mokd_mm.core.OrthogonalProjector` on the student side.

    Args:
        beta (float): smooth-L1 threshold. Defaults to 1.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, student: Streams, teacher: Streams) -> torch.Tensor:
        return self.loss_weight * sum(
            teacher_layer_norm_distance(s, t, self.beta) for s, t in _pairs(student, teacher)
        )


def sigmoid_kl_divergence(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Logit distillation for sigmoid (multi-label / focal-loss) heads: each
    class is a Bernoulli variable, ``T^2 sum_k KL(Ber(sigmoid(t_k / T)) ||
    Ber(sigmoid(s_k / T)))``, averaged over the samples.

    Args:
        student_logits (Tensor): (..., K); all leading dims are samples
            (e.g. (L, B, N, K) for the prediction levels of a DETR head).
        teacher_logits (Tensor): same shape.
        temperature (float): T > 0.
    """
    _check_same_shape(student_logits, teacher_logits)
    s = student_logits / temperature
    t = teacher_logits / temperature
    p_t = torch.sigmoid(t)
    # KL of Bernoulli(p_t) from Bernoulli(p_s), with log-sigmoids for stability.
    kl = p_t * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p_t) * (
        F.logsigmoid(-t) - F.logsigmoid(-s)
    )
    return kl.sum(-1).mean() * temperature**2


class SigmoidKLDivergenceLoss(KLDivergenceLoss):
    """:func:`sigmoid_kl_divergence` summed over streams (the head term of
    MoKD's detection distillation: class logits of matched [DET] tokens).

    Args:
        temperature (float): T. Defaults to 1.
        loss_weight (float): Defaults to 1.
    """

    divergence = staticmethod(sigmoid_kl_divergence)
