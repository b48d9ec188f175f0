"""Checkpoint writes: atomic, with the umask's permissions, and no
temporaries left behind by an interrupted save."""

import os
import stat
import subprocess
import sys

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from mokd_mm.checkpoint import AtomicLocalBackend, save_checkpoint_atomic
from mokd_mm.checkpoint.atomic import TEMP_PREFIX


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / 'model.pth'
    save_checkpoint_atomic(dict(a=torch.ones(2)), str(path))

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        save_checkpoint_atomic(dict(a=Unpicklable()), str(path))
    assert torch.equal(torch.load(path)['a'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['model.pth']


def test_mmengine_writes_go_through_the_atomic_backend(tmp_path):
    path = tmp_path / 'iter_1.pth'
    assert isinstance(get_file_backend(str(path)), AtomicLocalBackend)
    save_checkpoint(dict(state_dict=dict(w=torch.ones(1))), str(path))
    with pytest.raises(TypeError):
        get_file_backend(str(path)).put('not bytes', str(path))  # fails while writing
    assert torch.equal(torch.load(path)['state_dict']['w'], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ['iter_1.pth']


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_checkpoint_atomic(dict(a=torch.ones(1)), str(tmp_path / 'm.pth'))
        with open(tmp_path / 'plain', 'w'):
            pass
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / 'm.pth').st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / 'plain').st_mode) == 0o666 & ~umask


def test_temporaries_of_a_killed_save_are_removed_at_the_next_one(tmp_path):
    # A process that dies while its temporary exists (as a kill -9 mid-save).
    code = (
        f'import os\nopen(os.path.join({str(tmp_path)!r}, '
        f'"{TEMP_PREFIX}%d-abc" % os.getpid()), "wb").write(b"half")\n'
    )
    subprocess.run([sys.executable, '-c', code], check=True)
    alive = tmp_path / f'{TEMP_PREFIX}{os.getpid()}-mine'  # a save under way here
    alive.write_bytes(b'writing')
    assert len(list(tmp_path.glob(f'{TEMP_PREFIX}*'))) == 2
    save_checkpoint_atomic(dict(a=torch.ones(1)), str(tmp_path / 'next.pth'))
    assert [p.name for p in tmp_path.glob(f'{TEMP_PREFIX}*')] == [alive.name]
