"""Atomic, permission-correct checkpoint writes, sealed with their digest.

A file is written to a temporary name beside its target, flushed to disk
and renamed over the target: a reader (or a resumed run) sees the old file
or the complete new one, never a truncated one. Temporary names carry the
writing process's id; temporaries of processes that no longer run (a run
killed during a save) are removed at the next write into that directory.
"""

import io
import os
import os.path as osp
import re
import tempfile
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.fileio import LocalBackend, register_backend

from .digest import seal

TEMP_PREFIX = '.tmp-mokd-'


def _umask() -> int:
    """The process's umask (read without changing it where Linux allows)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: str) -> None:
    """Remove this module's temporaries in ``directory`` whose writing
    process no longer runs."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(TEMP_PREFIX):
            continue
        pid = name[len(TEMP_PREFIX) :].split('-', 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            try:
                os.remove(osp.join(directory, name))
            except OSError:
                pass


def newest_checkpoint(
    directory: str, templates: Sequence[str] = ('iter_{}.pth', 'epoch_{}.pth')
) -> Optional[str]:
    """The newest checkpoint in ``directory``: the highest-numbered file
    named by one of ``templates``, whatever ``last_checkpoint`` says (a run
    killed between writing a checkpoint and ``last_checkpoint`` leaves the
    latter one interval behind). Files under these names are complete (they
    are renamed into place once written); a damaged one is refused when it
    is loaded. None when there is none."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    found = []
    for template in templates:
        pattern = re.compile(re.escape(template).replace(re.escape('{}'), r'(\d+)') + '$')
        for name in names:
            match = pattern.match(name)
            if match:
                found.append((int(match.group(1)), osp.join(directory, name)))
    return max(found)[1] if found else None


def atomic_write(path, data: Union[bytes, Sequence[bytes]]) -> None:
    """Write ``data`` (bytes, or chunks of bytes written in order) to
    ``path`` atomically; the file gets mode ``0o666 & ~umask``, as
    ``open()`` would give it."""
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix=f'{TEMP_PREFIX}{os.getpid()}-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            for chunk in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint_atomic(checkpoint: Dict, path: str) -> None:
    """``torch.save`` with its digest (:func:`.digest.seal`), written with
    :func:`atomic_write`."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write(path, seal(buffer.getvalue()))


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with :func:`atomic_write`, sealing
    every checkpoint it writes with its digest (:func:`.digest.seal`).

    MMEngine saves checkpoints through the backend's ``put``, which opens the
    final path and writes into it: a run killed during the write leaves a
    truncated checkpoint that ``--resume`` then picks.
    """

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(filepath, seal(obj))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))

    @classmethod
    def register(cls) -> None:
        """Serve local paths (MMEngine's ``'local'`` backend) with this class."""
        register_backend('local', cls, force=True, prefixes='')
