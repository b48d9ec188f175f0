"""Checkpoints you can trust, for MMEngine runs on torch >= 2.6.

Importing this package (``import mokd_mm`` does) changes two process-wide
things, on purpose, because users of mmdet's and mmpretrain's own
``tools/train.py`` and ``tools/test.py`` rely on them through one
``custom_imports`` line:

* **loading** (:mod:`.safe_load`): MMEngine 0.10 calls ``torch.load``
  with torch's default ``weights_only=True`` and cannot read the checkpoints
  it writes itself (``--resume`` and ``load_from`` fail). The few non-tensor
  objects MMEngine stores are admitted through validating stand-ins that can
  build nothing else, and every local load names the file when it fails;
* **writing** (:mod:`.atomic`): checkpoints are written to a temporary file
  and renamed into place, with the permissions the umask gives, and carry
  the SHA-256 of their payload (:mod:`.digest`), which every load checks.

:func:`extract_student` writes a distiller's student as a checkpoint of its
own (``tools/export_student.py``).
"""

from .atomic import (
    AtomicLocalBackend,
    atomic_write,
    newest_checkpoint,
    remove_stale_temporaries,
    save_checkpoint_atomic,
)
from .export import STUDENT_PREFIX, extract_student
from .safe_load import CheckpointLoadError, load_checkpoint, register_safe_loading, source_of

register_safe_loading()
AtomicLocalBackend.register()

__all__ = [
    'AtomicLocalBackend',
    'atomic_write',
    'newest_checkpoint',
    'remove_stale_temporaries',
    'save_checkpoint_atomic',
    'extract_student',
    'STUDENT_PREFIX',
    'CheckpointLoadError',
    'load_checkpoint',
    'register_safe_loading',
    'source_of',
]
