"""The distiller's teacher: its weights, read when training starts, and its
view of the student's preprocessed batch."""

import os.path as osp
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch import nn


def load_teacher_checkpoint(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into the teacher on the CPU, strictly and weights-only.

    The weights are the checkpoint's ``state_dict`` (MMEngine), its
    ``model`` (DeiT / timm training checkpoints, e.g. the published
    RegNetY-160 file, for a ``TimmClassifier`` teacher) or the checkpoint
    itself (a plain state dict).
    """
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(
            f'teacher_ckpt {path!r} does not exist (the teacher is loaded when training starts)'
        )
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            state = checkpoint[key]
            break
    try:
        load_state_dict(teacher, state, strict=True, logger='current')
    except RuntimeError as err:
        raise ValueError(f'teacher_ckpt {path!r} does not match the teacher: {err}') from None


class TeacherInputs:
    """The teacher's view of the student's preprocessed batch.

    The distiller preprocesses a batch once, the student's way. A teacher
    whose own preprocessing differs (caffe-style mmdet backbones: BGR,
    std 1; timm teachers: their own mean and std) receives the batch
    converted exactly: the student's normalisation and channel order are
    undone and the teacher's applied, pixels outside each image (padding)
    take the teacher's pad value, and the batch is padded further when the
    teacher's ``pad_size_divisor`` asks for it (detection samples then carry
    the teacher's ``batch_input_shape``). Batch augments such as Mixup act
    on normalised pixels and commute with this affine conversion, so the
    teacher sees the same mixed images. Teachers that preprocess like the
    student get the batch unchanged.

    Args:
        student (nn.Module): the student's data preprocessor.
        teacher (nn.Module): the teacher's.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module):
        self.student = student
        self.teacher = teacher
        self._unchanged: Optional[bool] = None  # decided at the first batch

    def __call__(self, inputs: torch.Tensor, data_samples=None):
        """Convert ``inputs`` (B, C, H, W), preprocessed the student's way.

        Returns:
            tuple: the teacher's inputs (B, C, H', W') and data samples.
        """
        if self._unchanged is None:
            self._unchanged = self._same()
        if self._unchanged or not torch.is_tensor(inputs) or inputs.dim() != 4:
            return inputs, data_samples
        s_mean, s_std = _normalisation(self.student, inputs)
        t_mean, t_std = _normalisation(self.teacher, inputs)
        raw = inputs * s_std + s_mean
        if _flips(self.student, inputs) != _flips(self.teacher, inputs):
            raw = raw.flip(1)
        converted = (raw - t_mean) / t_std
        pad_value = float(getattr(self.teacher, 'pad_value', 0))
        valid = _valid_region(inputs, data_samples)
        if valid is not None:
            converted = torch.where(valid, converted, converted.new_tensor(pad_value))
        return _pad_to_divisor(converted, data_samples, self.teacher, pad_value)

    def _same(self) -> bool:
        for attr in ('mean', 'std', 'pad_value', 'pad_size_divisor', '_enable_normalize'):
            s, t = getattr(self.student, attr, None), getattr(self.teacher, attr, None)
            if torch.is_tensor(s) and torch.is_tensor(t):
                if s.shape != t.shape or not torch.equal(s.cpu(), t.cpu()):
                    return False
            elif s != t and not (attr == 'pad_size_divisor' and (s or 1) == (t or 1)):
                return False
        probe = torch.empty(1, 3, 1, 1)
        return _flips(self.student, probe) == _flips(self.teacher, probe)


def _normalisation(pre: nn.Module, like: torch.Tensor):
    """A preprocessor's mean and std, (1, C, 1, 1) (0 and 1 when it does
    not normalise)."""
    if not getattr(pre, '_enable_normalize', False):
        zero = like.new_zeros(1, like.shape[1], 1, 1)
        return zero, zero + 1
    return pre.mean.to(like).view(1, -1, 1, 1), pre.std.to(like).view(1, -1, 1, 1)


def _flips(pre: nn.Module, like: torch.Tensor) -> bool:
    """Whether a preprocessor reverses the channel order of a 3-channel
    batch (mmengine / mmdet: ``bgr_to_rgb`` or ``rgb_to_bgr``; mmpretrain's
    classifier: ``to_rgb``)."""
    flips = getattr(pre, '_channel_conversion', None)
    if flips is None:
        flips = getattr(pre, 'to_rgb', False)
    return bool(flips) and like.shape[1] == 3


def _valid_region(inputs: torch.Tensor, data_samples) -> Optional[torch.Tensor]:
    """(B, 1, H, W), True inside each image (its ``img_shape``); None when
    the samples do not say (no padding assumed)."""
    shapes = [getattr(s, 'img_shape', None) for s in (data_samples or [])]
    if len(shapes) != inputs.shape[0] or any(shape is None for shape in shapes):
        return None
    height, width = inputs.shape[-2:]
    rows = torch.arange(height, device=inputs.device)
    cols = torch.arange(width, device=inputs.device)
    masks = [(rows[:, None] < h) & (cols[None, :] < w) for h, w in (s[:2] for s in shapes)]
    return torch.stack(masks)[:, None]


def _pad_to_divisor(inputs: torch.Tensor, data_samples, pre: nn.Module, pad_value: float):
    divisor = int(getattr(pre, 'pad_size_divisor', 1) or 1)
    height, width = inputs.shape[-2:]
    pad_h, pad_w = (-height) % divisor, (-width) % divisor
    if not (pad_h or pad_w):
        return inputs, data_samples
    inputs = F.pad(inputs, (0, pad_w, 0, pad_h), value=pad_value)
    shape = tuple(inputs.shape[-2:])
    if data_samples is not None:
        data_samples = [_with_batch_shape(s, shape) for s in data_samples]
    return inputs, data_samples


def _with_batch_shape(sample, shape):
    """A shallow copy of a detection sample with ``batch_input_shape``
    replaced (the student keeps its own)."""
    if 'batch_input_shape' not in getattr(sample, 'metainfo', {}):
        return sample
    copy = sample.new()
    copy.set_metainfo(dict(batch_input_shape=shape))
    return copy
