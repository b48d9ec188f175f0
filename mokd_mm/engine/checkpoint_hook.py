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
    and ``last_checkpoint`` names a deleted file. Here the new checkpoint is
    written first (atomically, as every local write once ``mokd_mm`` is
    imported), then ``last_checkpoint`` is replaced atomically, and only then
    are outdated checkpoints removed. Arguments are CheckpointHook's.
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
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            # Recorded before the save, so that the checkpoint holds it.
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt.encode())
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
