"""Run the same command in this checkout and in an older revision of it,
for before/after measurements side by side in one run.

:func:`checkout` puts a revision in a temporary ``git worktree`` (removed
afterwards); the benchmarks run their command with that tree as the working
directory and first on ``PYTHONPATH``, so the old code, configs and tools
are the ones measured. Both trees share this checkout's ``.venv``.
"""

import contextlib
import os
import os.path as osp
import subprocess
import tempfile

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@contextlib.contextmanager
def checkout(revision: str):
    """A temporary worktree of ``revision`` that shares this checkout's
    ``data/`` (a link); yields its path."""
    path = tempfile.mkdtemp(prefix='mokd_rev_')
    subprocess.run(
        ['git', 'worktree', 'add', '--detach', path, revision],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    if osp.isdir(osp.join(REPO, 'data')):
        os.symlink(osp.join(REPO, 'data'), osp.join(path, 'data'))
    try:
        yield path
    finally:
        subprocess.run(
            ['git', 'worktree', 'remove', '--force', path],
            cwd=REPO,
            check=False,
            capture_output=True,
        )


def environment(tree: str, **extra) -> dict:
    """The environment of a command run in ``tree``: its code first on
    ``PYTHONPATH``."""
    return {**os.environ, 'PYTHONPATH': tree, **extra}
