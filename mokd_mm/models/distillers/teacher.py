"""The distiller's teacher: its weights, read when training starts, and the
check that it reads the student's preprocessed batch correctly."""

import os.path as osp

import torch
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


def check_same_normalisation(student_pre: nn.Module, teacher_pre: nn.Module) -> None:
    """The teacher sees the student's preprocessed batch; refuse teachers
    whose own preprocessing normalises differently."""
    for attr in ('mean', 'std', '_channel_conversion'):
        s, t = getattr(student_pre, attr, None), getattr(teacher_pre, attr, None)
        if s is None or t is None or any(torch.is_tensor(v) and v.is_meta for v in (s, t)):
            continue  # (a meta-device build, for sizes, has no values)
        same = torch.equal(s.cpu(), t.cpu()) if torch.is_tensor(s) else s == t
        if not same:
            raise ValueError(
                f"the teacher's data_preprocessor differs from the student's "
                f"in {attr!r} ({t} vs {s}); the teacher reads the student's "
                'preprocessed inputs, so give both models the same '
                "normalisation (or set the distiller's data_preprocessor)"
            )
