"""Checkpoints through the tools: crafted files through every entry point,
strict evaluation, no non-finite step saved, no checkpoint lost."""

import os
import os.path as osp
import subprocess

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tests.conftest import MOKD_CFG, REPO, build_in_scope
from tests.test_checkpoint import crafted
from tests.test_tools.test_train_test_export import PYTHON, _config, _run

NAN_LOSS = '''
import torch
from mmengine.registry import MODELS


@MODELS.register_module()
class GradientBlowsUpAt(torch.nn.Module):
    """A finite loss whose gradient is NaN from the ``step``-th call on."""

    def __init__(self, step):
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, student, teacher):
        self.calls += 1
        loss = (student - teacher).pow(2).mean()
        if self.calls >= self.step:  # sqrt at 0: value 0, gradient inf * 0
            loss = loss + torch.sqrt(student.sum() * 0)
        return loss
'''


def _fails(result_args, *needles, env=None):
    result = subprocess.run(
        result_args,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHONPATH': REPO, **(env or {})},
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, (result.returncode, output[-3000:])  # an error, no crash
    for needle in needles:
        assert needle in output, (needle, output[-3000:])
    return output


def test_a_crafted_file_is_refused_by_every_entry_point(tmp_path, shapes_root, teacher_ckpt):
    marker = tmp_path / 'executed'
    evil = crafted.write(tmp_path / 'evil.pth', 'numpy object array', marker)
    shell = crafted.write(tmp_path / 'shell.pth', 'os.system', marker)
    config = _config(tmp_path, shapes_root, teacher_ckpt, max_iters=1)
    reason = 'cannot be loaded safely'
    _fails(
        [PYTHON, 'tools/train.py', config, '--work-dir', str(tmp_path / 'w'), '--resume', evil],
        evil,
        reason,
    )
    _fails(
        [PYTHON, 'tools/test.py', config, shell, '--work-dir', str(tmp_path / 't')], shell, reason
    )
    _fails([PYTHON, 'tools/export_student.py', evil, str(tmp_path / 'out.pth')], evil, reason)
    cfg = Config.fromfile(MOKD_CFG)
    model = cfg.model.to_dict()
    model.update(teacher_ckpt=evil, data_preprocessor=cfg.data_preprocessor.to_dict())
    with pytest.raises(RuntimeError, match=f'{evil}.*{reason}'):
        build_in_scope(model).train()
    assert not marker.exists() and not osp.exists(tmp_path / 'out.pth')


def test_test_tool_loads_strictly(tmp_path, shapes_root, teacher_ckpt):
    config = _config(tmp_path, shapes_root, teacher_ckpt)
    # The teacher's checkpoint given for the distiller: the student's keys
    # (a ResNet-18 both) but twice the widths. Refused, with the file, the
    # shapes and the way out.
    _fails(
        [PYTHON, 'tools/test.py', config, teacher_ckpt, '--work-dir', str(tmp_path / 'e')],
        teacher_ckpt,
        'does not match the model',
        'size mismatch for student.backbone.conv1.weight',
        '--non-strict',
    )
    out = _run(
        [
            PYTHON,
            'tools/test.py',
            config,
            teacher_ckpt,
            '--non-strict',
            '--work-dir',
            str(tmp_path / 'e2'),
        ]
    )
    assert 'accuracy/top1' in out


def test_a_non_finite_step_is_not_saved_and_names_its_loss(tmp_path, shapes_root, teacher_ckpt):
    (tmp_path / 'nan_loss.py').write_text(NAN_LOSS)
    extra = (
        "custom_imports = dict(imports=['mokd_mm', 'nan_loss'], allow_failed_imports=False)\n"
        f'model = dict(teacher_ckpt={teacher_ckpt!r}, distill_losses=dict(loss_blowup=dict('
        "type='GradientBlowsUpAt', step=4, student='logits', teacher='logits')))\n"
        'default_hooks = dict(checkpoint=dict(interval=1))\n'
    )
    config = _config(tmp_path, shapes_root, teacher_ckpt, extra=extra)
    for balancer in ('FixedWeights', 'MoKDAmortized'):
        work_dir = tmp_path / balancer
        _fails(
            [
                PYTHON,
                'tools/train.py',
                config,
                '--work-dir',
                str(work_dir),
                '--cfg-options',
                f'optim_wrapper.balancer.type={balancer}',
            ],
            'NonFiniteUpdateError',
            'distill.loss_blowup',
            env=dict(PYTHONPATH=f'{REPO}:{tmp_path}'),
        )
        saved = sorted(work_dir.glob('iter_*.pth'), key=lambda p: int(p.stem[5:]))
        if balancer == 'FixedWeights':  # (the amortized rule also calls losses to re-evaluate)
            assert saved[-1].name == 'iter_3.pth'  # the 4th step was refused, never saved
        assert (work_dir / 'last_checkpoint').read_text() == str(saved[-1])
        for path in saved:
            state = torch.load(path, weights_only=False)['state_dict']
            assert all(torch.isfinite(v).all() for v in state.values()), path


def test_a_kill_during_a_save_keeps_the_last_checkpoint(tmp_path, shapes_root, teacher_ckpt):
    """max_keep_ckpts=1: the second save dies; the first checkpoint and
    last_checkpoint still point to a complete file."""
    cfg = Config.fromfile(_config(tmp_path, shapes_root, teacher_ckpt, max_iters=2))
    cfg.work_dir = str(tmp_path / 'run')
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    runner = Runner.from_cfg(cfg)
    save = runner.save_checkpoint
    calls = []

    def dies_at_the_second_save(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt('killed during the save')
        return save(*args, **kwargs)

    runner.save_checkpoint = dies_at_the_second_save
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    last = (tmp_path / 'run' / 'last_checkpoint').read_text()
    assert last.endswith('iter_1.pth') and osp.isfile(last)


def _dead_pid():
    process = subprocess.Popen([PYTHON, '-c', 'pass'])
    process.wait()
    return process.pid


def test_resume_after_a_kill_finds_the_newest_checkpoint_and_refuses_a_corrupt_one(
    tmp_path, shapes_root, teacher_ckpt
):
    """A kill between a checkpoint's rename and last_checkpoint's: the
    resumed run starts from the newest checkpoint and removes the killed
    save's temporary; a checkpoint damaged on disk is refused by name."""
    config = _config(tmp_path, shapes_root, teacher_ckpt, max_iters=3)
    work = tmp_path / 'run'
    _run(
        [PYTHON, 'tools/train.py', config, '--work-dir', str(work), '--cfg-options']
        + ['train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=1']
    )
    (work / 'last_checkpoint').write_text(str(work / 'iter_1.pth'))
    leftover = work / f'.tmp-mokd-{_dead_pid()}-x'
    leftover.write_bytes(b'\0' * 4096)
    out = _run(
        [PYTHON, 'tools/train.py', config, '--work-dir', str(work), '--resume', '--cfg-options']
        + ['default_hooks.checkpoint.interval=1']
    )
    assert (
        f'Load checkpoint from {work / "iter_2.pth"}' in out and 'resumed epoch: 0, iter: 2' in out
    )
    assert f'the newest complete checkpoint is {work / "iter_2.pth"}' in out  # the hook's repair
    assert not leftover.exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_3.pth')

    damaged = work / 'iter_3.pth'
    data = bytearray(damaged.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    _fails(
        [PYTHON, 'tools/train.py', config, '--work-dir', str(work), '--resume'],
        f"checkpoint '{damaged}' is corrupt",
    )


def test_starting_from_scratch_with_resume_says_so(tmp_path, shapes_root, teacher_ckpt):
    config = _config(tmp_path, shapes_root, teacher_ckpt, max_iters=1)
    out = _run([PYTHON, 'tools/train.py', config, '--work-dir', str(tmp_path / 'w'), '--resume'])
    assert 'holds no checkpoint yet; training starts from scratch' in out
    assert 'latest checkpoint None' not in out


def test_outdated_checkpoints_are_removed_after_the_new_one_is_written(
    tmp_path, shapes_root, teacher_ckpt
):
    cfg = Config.fromfile(_config(tmp_path, shapes_root, teacher_ckpt, max_iters=3))
    cfg.work_dir = str(tmp_path / 'run')
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    Runner.from_cfg(cfg).train()
    assert sorted(p.name for p in (tmp_path / 'run').glob('iter_*.pth')) == ['iter_3.pth']
    assert (tmp_path / 'run' / 'last_checkpoint').read_text().endswith('iter_3.pth')
