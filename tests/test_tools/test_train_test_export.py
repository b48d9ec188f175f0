"""tools/train.py, tools/test.py, tools/dist_train.sh and
tools/export_student.py end to end on the generated shape set."""

import glob
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import MOKD_CFG, REPO, STUDENT_CFG

PYTHON = sys.executable

# Every rank writes the state it would train on next, for the test to compare.
RANK_DUMP_HOOK = """
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankStateHook(Hook):

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        state = dict(model={k: v.detach().cpu() for k, v in model.state_dict().items()},
                     weights=runner.optim_wrapper.balancer.applied,
                     balancer=runner.optim_wrapper.balancer.state_dict())
        torch.save(state, f'{runner.work_dir}/rank{get_rank()}.pth')
"""


def _config(tmp_path, shapes_root, teacher_ckpt, max_iters=6, extra=''):
    path = tmp_path / 'mokd_test.py'
    path.write_text(f"""
_base_ = [{MOKD_CFG!r}]
data_root = {shapes_root!r}
_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root, pipeline=_pipeline))
val_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(teacher_ckpt={teacher_ckpt!r})
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
param_scheduler = []
optim_wrapper = dict(diagnostics_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3, max_keep_ckpts=5))
{extra}
""")
    return str(path)


def _run(args, env=None, timeout=600):
    full_env = {**os.environ, 'PYTHONPATH': REPO, **(env or {})}
    result = subprocess.run(
        args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout + result.stderr


def _train(config, work_dir, *extra):
    return _run([PYTHON, 'tools/train.py', config, '--work-dir', str(work_dir), *extra])


def _scalars(work_dir):
    logs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return [json.loads(line) for line in f if '"mokd/pi_distill"' in line]


def test_resume_reproduces_the_uninterrupted_run(tmp_path, shapes_root, teacher_ckpt):
    config = _config(
        tmp_path,
        shapes_root,
        teacher_ckpt,
        extra=(
            "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), "
            "dict(type='TensorboardVisBackend')])"
        ),
    )
    _train(config, tmp_path / 'full')
    # Interrupted after iteration 3: resume from its checkpoint elsewhere.
    _train(config, tmp_path / 'resumed', '--resume', str(tmp_path / 'full' / 'iter_3.pth'))
    full = torch.load(tmp_path / 'full' / 'iter_6.pth')
    resumed = torch.load(tmp_path / 'resumed' / 'iter_6.pth')
    for key, value in full['state_dict'].items():
        assert torch.allclose(value.float(), resumed['state_dict'][key].float(), atol=1e-6), key
    mokd_full, mokd_resumed = full['optimizer']['mokd'], resumed['optimizer']['mokd']
    assert torch.allclose(
        mokd_full['balancer_state']['logits'], mokd_resumed['balancer_state']['logits']
    )
    # The per-iteration log: same losses and weights for iterations 4-6.
    tail_full = {r['iter']: r for r in _scalars(tmp_path / 'full') if r['iter'] > 3}
    tail_resumed = {r['iter']: r for r in _scalars(tmp_path / 'resumed')}
    assert sorted(tail_resumed) == [4, 5, 6]
    for it, record in tail_resumed.items():
        for key in ('loss_distill', 'loss_task', 'mokd/pi_distill'):
            assert record[key] == pytest.approx(tail_full[it][key], rel=1e-5), (it, key)
    # A line of the log adds up: each objective is the sum of its losses,
    # averaged over the same window (MMEngine's logger averages keys with
    # 'loss'), in scalars.json and in the text log.
    for record in _scalars(tmp_path / 'full'):
        for objective, prefix in (('distill', 'distill.'), ('task', 'student.loss')):
            parts = [v for k, v in record.items() if k.startswith(prefix)]
            assert sum(parts) == pytest.approx(record[f'loss_{objective}'], rel=1e-5), record
    text_log = glob.glob(str(tmp_path / 'full' / '*' / '*.log'))[0]
    lines = [line for line in open(text_log) if 'Iter(train) [' in line and 'loss_distill' in line]
    assert len(lines) == 6
    for line in lines:
        logged = dict(re.findall(r'(\S+): (-?\d+\.\d+)', line))
        distill = sum(float(v) for k, v in logged.items() if k.startswith('distill.'))
        assert distill == pytest.approx(float(logged['loss_distill']), abs=3e-4), line
    # The checkpoint holds no teacher.
    assert not any(k.startswith('teacher') for k in full['state_dict'])
    # Diagnostics reached the json log at iterations 1, 3, 5 only, and TensorBoard.
    log = glob.glob(str(tmp_path / 'full' / '*' / 'vis_data' / 'scalars.json'))[0]
    with open(log) as f:
        conflict_steps = [r['step'] for r in map(json.loads, f) if 'mokd/conflict' in r]
    assert conflict_steps == [1, 3, 5]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = glob.glob(str(tmp_path / 'full' / '*' / 'vis_data' / 'events.out.tfevents.*'))
    accumulator = EventAccumulator(events[0])
    accumulator.Reload()
    tags = accumulator.Tags()['scalars']
    assert {'mokd/pi_distill', 'mokd/pi_task', 'mokd/conflict', 'mokd/dominance'} <= set(tags)
    assert len(accumulator.Scalars('mokd/pi_distill')) == 6


def test_export_student_and_evaluate_with_its_own_config(tmp_path, shapes_root, teacher_ckpt):
    config = _config(tmp_path, shapes_root, teacher_ckpt, max_iters=3)
    _train(config, tmp_path / 'run')
    ckpt = str(tmp_path / 'run' / 'iter_3.pth')
    out = _run(
        [
            PYTHON,
            'tools/test.py',
            config,
            ckpt,
            '--work-dir',
            str(tmp_path / 'eval'),
            '--out',
            str(tmp_path / 'preds.pkl'),
        ]
    )
    distiller_acc = float(out.split('accuracy/top1: ')[1].split()[0])
    assert osp.getsize(tmp_path / 'preds.pkl') > 0

    exported = str(tmp_path / 'student.pth')
    _run([PYTHON, 'tools/export_student.py', ckpt, exported])
    state = torch.load(exported, weights_only=True)  # plain tensors only
    assert 'backbone.conv1.weight' in state['state_dict']
    student_cfg = tmp_path / 'student.py'
    student_cfg.write_text(
        f'_base_ = [{STUDENT_CFG!r}]\n'
        f'test_dataloader = dict(dataset=dict(data_root={shapes_root!r}))\n'
    )
    out = _run(
        [
            PYTHON,
            'tools/test.py',
            str(student_cfg),
            exported,
            '--work-dir',
            str(tmp_path / 'eval_student'),
        ]
    )
    assert float(out.split('accuracy/top1: ')[1].split()[0]) == distiller_acc


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('balancer', ['MoKDAmortized', 'MoKDExact', 'RandomLossWeighting'])
def test_two_process_gloo_run_keeps_ranks_identical(tmp_path, shapes_root, teacher_ckpt, balancer):
    """DDP's reducer (a loss rule), per-objective gradients averaged once
    (a gradient rule), a random rule, with the student's first two stages
    frozen (parameters DDP never sees a gradient for): both ranks end with
    the same student, connectors and balancer state."""
    (tmp_path / 'rank_dump_hook.py').write_text(RANK_DUMP_HOOK)
    extra = (
        "custom_imports = dict(imports=['mokd_mm', 'rank_dump_hook'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='DumpRankStateHook')]\n"
        f'optim_wrapper = dict(balancer=dict(_delete_=True, type={balancer!r}))\n'
        f'model = dict(teacher_ckpt={teacher_ckpt!r}, '
        'student=dict(backbone=dict(frozen_stages=2)))\n'
    )
    config = _config(tmp_path, shapes_root, teacher_ckpt, max_iters=3, extra=extra)
    work_dir = tmp_path / 'dist'
    _run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work_dir)],
        env=dict(
            PYTHON=PYTHON,
            PORT=str(_free_port()),
            PYTHONPATH=f'{REPO}:{tmp_path}',
            OMP_NUM_THREADS='1',
        ),
    )
    rank0 = torch.load(work_dir / 'rank0.pth')
    rank1 = torch.load(work_dir / 'rank1.pth')
    for key, value in rank0['model'].items():
        if key.endswith('num_batches_tracked') or 'running_' in key:
            continue  # BatchNorm statistics are per process, as with DDP
        assert torch.equal(value, rank1['model'][key]), key
    assert torch.equal(rank0['weights'], rank1['weights'])
    for key, value in rank0['balancer'].items():
        if torch.is_tensor(value):
            assert torch.equal(value, rank1['balancer'][key]), key
    if balancer == 'MoKDAmortized':
        assert not torch.equal(rank0['balancer']['logits'], torch.zeros(2))  # learned
