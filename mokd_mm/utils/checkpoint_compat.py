"""Checkpoints on torch >= 2.6: safe loading of what MMEngine stores, atomic
writes, and the student part of a distiller's checkpoint."""
import collections
import io
import os
import os.path as osp
import pickle
import tempfile
from typing import Dict

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend

STUDENT_PREFIX = 'student.'


def _numpy_globals():
    """The numpy callables and types a pickled ndarray / scalar refers to."""
    core = getattr(np, '_core', None) or np.core
    found = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    # dtype classes such as numpy.dtypes.Float64DType (numpy >= 1.25).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def _history_buffer_statistic(owner, name: str):
    """What ``getattr`` may do while a checkpoint is unpickled.

    ``HistoryBuffer.__getstate__`` stores its statistics methods, which
    pickle as ``getattr(HistoryBuffer, 'mean')`` and so on. A general
    ``getattr`` would let a crafted checkpoint reach any attribute of an
    allowed object, so this stand-in resolves only those methods.
    """
    from mmengine.logging import HistoryBuffer
    method = getattr(HistoryBuffer, name, None) if owner is HistoryBuffer else None
    if method is None or name.startswith('_') or not callable(method):
        raise pickle.UnpicklingError(
            f'refusing getattr({owner!r}, {name!r}) in a weights-only load: only '
            'HistoryBuffer statistics methods are allowed')
    return method


def register_mmengine_safe_globals() -> None:
    """Allow ``torch.load(weights_only=True)`` -- the default since torch
    2.6, and what MMEngine 0.10's ``load_checkpoint`` uses -- to read
    MMEngine checkpoints for ``--resume`` and ``load_from``.

    MMEngine stores its MessageHub (``HistoryBuffer`` objects holding numpy
    arrays, with their statistics methods) and numpy scalars in ``meta``.
    These are registered as safe, and ``getattr`` is replaced by a stand-in
    that only resolves ``HistoryBuffer`` methods, rather than turning
    ``weights_only`` off.
    """
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, collections.OrderedDict, collections.defaultdict,
         (_history_buffer_statistic, 'builtins.getattr')] + _numpy_globals())


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk,
    then rename it over ``path``: a reader (or a resumed run) sees either the
    old file or the complete new one, never a half-written file."""
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint_atomic(checkpoint: Dict, path: str) -> None:
    """``torch.save`` with :func:`atomic_write`."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write(path, buffer.getvalue())


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with atomic writes.

    MMEngine saves checkpoints (and ``last_checkpoint``) through the file
    backend's ``put``, which opens the final path and writes into it: a run
    killed during the write leaves a truncated checkpoint that ``--resume``
    then picks. Registered as the ``'local'`` backend when ``mokd_mm`` is
    imported.
    """

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))


def register_atomic_local_backend() -> None:
    """Make :class:`AtomicLocalBackend` serve local paths."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def extract_student(checkpoint: Dict, source: str = 'checkpoint') -> Dict:
    """The student's weights of a ``MoKDDistiller`` checkpoint, as a
    checkpoint of the student model: ``{'state_dict', 'meta'}`` with the
    ``student.`` prefix removed and the dataset metadata kept.

    Raises:
        KeyError: ``checkpoint`` has no ``state_dict`` or no student weights.
    """
    if 'state_dict' not in checkpoint:
        raise KeyError(f'{source} has no "state_dict"')
    state = checkpoint['state_dict']
    student = collections.OrderedDict(
        (key[len(STUDENT_PREFIX):], value) for key, value in state.items()
        if key.startswith(STUDENT_PREFIX))
    if not student:
        raise KeyError(f'{source} has no "{STUDENT_PREFIX}*" weights: it is not '
                       'a MoKDDistiller checkpoint')
    meta = {}
    dataset_meta = checkpoint.get('meta', {}).get('dataset_meta')
    if dataset_meta is not None:
        meta['dataset_meta'] = dataset_meta
    return dict(state_dict=student, meta=meta)
