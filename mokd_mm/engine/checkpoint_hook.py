"""A CheckpointHook that never leaves a run without a checkpoint."""

import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from mokd_mm.checkpoint import atomic_write, newest_checkpoint, remove_stale_temporaries


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """MMEngine's :class:`~mmengine.hooks.CheckpointHook` with a safe order.

    MMEngine deletes the oldest kept checkpoint before it writes the new
    one, and writes ``last_checkpoint`` with a plain ``open``: with
    ``max_keep_ckpts=1``, a run killed during a save has no checkpoint left
    and ``last_checkpoint`` names a deleted file. Here MMEngine's own save
    runs with those removals held back: the new checkpoint is written first
    (atomically, as every local write once ``mokd_mm`` is imported), then
    ``last_checkpoint`` is replaced atomically, and only then are outdated
    checkpoints removed. When a run starts, a killed run's leftovers are
    cleaned up (:meth:`before_run`). Arguments are CheckpointHook's.
    """

    def before_run(self, runner) -> None:
        """Clean up after a killed run before anything resumes from it:
        remove its leftover temporaries and point ``last_checkpoint`` at the
        newest complete checkpoint (a kill between a checkpoint's rename and
        ``last_checkpoint``'s leaves it one interval behind)."""
        super().before_run(runner)
        if not is_main_process():
            return
        out_dir = self.out_dir or runner.work_dir
        if out_dir != runner.work_dir:
            out_dir = osp.join(out_dir, osp.basename(runner.work_dir.rstrip(osp.sep)))
        for directory in {runner.work_dir, out_dir}:
            remove_stale_temporaries(directory)
        newest = newest_checkpoint(out_dir, [self.filename_tmpl])
        record = osp.join(runner.work_dir, 'last_checkpoint')
        recorded = None
        if osp.isfile(record):
            with open(record) as f:
                recorded = f.read().strip()
        if newest is not None and recorded != newest:
            atomic_write(record, newest.encode())
            print_log(
                f'last_checkpoint named {recorded}, the newest complete checkpoint is '
                f'{newest}: last_checkpoint now names it',
                logger='current',
            )

    def _save_checkpoint_with_step(self, runner, step, meta):
        """MMEngine's save, with its removals of outdated checkpoints held
        back until the new checkpoint and ``last_checkpoint`` are written
        (a save that fails or is killed removes nothing)."""
        backend, deferred = self.file_backend, []
        self.file_backend = _DeferredRemovals(backend, deferred)
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.file_backend = backend
        if not is_main_process():
            return
        # MMEngine writes last_checkpoint with a plain open(): again, atomically.
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt.encode())
        for remove in deferred:
            remove()


class _DeferredRemovals:
    """A file backend whose ``remove`` and ``rmtree`` are recorded, to be run
    later, instead of run."""

    def __init__(self, backend, deferred):
        self._backend, self._deferred = backend, deferred

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def remove(self, path) -> None:
        self._deferred.append(lambda: self._backend.remove(path))

    def rmtree(self, path) -> None:
        self._deferred.append(lambda: self._backend.rmtree(path))
