"""MoKD inside the recipes users already run, through tools/train.py and
tools/test.py: a student started from its own pretrained checkpoint
(``load_from`` or the student's ``init_cfg``), EMA, Mixup/CutMix batch
augments, a partial ``--cfg-options`` override of a balancer default, and
the tools run the way the README writes them."""

import os
import os.path as osp
import subprocess

import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO, STUDENT_CFG, build_in_scope
from tests.test_tools.test_train_test_export import PYTHON, _config, _run, _train

REGISTRY_WARNING = 'Failed to search registry'


@pytest.fixture(scope='module')
def student_ckpt(tmp_path_factory):
    """A checkpoint of the student alone, as its own config trains it."""
    torch.manual_seed(5)
    student = build_in_scope(Config.fromfile(STUDENT_CFG).model)
    path = tmp_path_factory.mktemp('student') / 'student.pth'
    torch.save(dict(state_dict=student.state_dict(), meta=dict()), path)
    return str(path)


def _frozen_config(tmp_path, shapes_root, teacher_ckpt, extra):
    """One iteration at learning rate 0: the student ends as it started."""
    return _config(
        tmp_path,
        shapes_root,
        teacher_ckpt,
        max_iters=1,
        extra='optim_wrapper = dict(optimizer=dict(lr=0.0, momentum=0.0, weight_decay=0.0))\n'
        + extra,
    )


def _student_params(path):
    state = torch.load(path, weights_only=False)['state_dict']
    return {k[len('student.') :]: v for k, v in state.items() if k.startswith('student.')}


def _assert_student_is(checkpoint, student_ckpt):
    loaded = torch.load(student_ckpt)['state_dict']
    trained = _student_params(checkpoint)
    assert set(trained) == set(loaded)
    for key, value in loaded.items():
        if 'running_' in key or 'num_batches' in key:
            continue  # BatchNorm statistics move in a training step
        assert torch.equal(trained[key], value), key


def test_load_from_a_checkpoint_of_the_student_alone(
    tmp_path, shapes_root, teacher_ckpt, student_ckpt
):
    config = _frozen_config(tmp_path, shapes_root, teacher_ckpt, f'load_from = {student_ckpt!r}\n')
    out = _train(
        config,
        tmp_path / 'run',
        '--cfg-options',
        'optim_wrapper.balancer.optimizer.lr=0.01',
    )
    assert f'{student_ckpt} holds the student alone' in out
    _assert_student_is(tmp_path / 'run' / 'iter_1.pth', student_ckpt)
    # A partial override keeps the rest of the default logits optimizer.
    ckpt = torch.load(tmp_path / 'run' / 'iter_1.pth', weights_only=False)
    group = ckpt['optimizer']['mokd']['balancer_state']['optimizer']['param_groups'][0]
    assert (group['lr'], group['weight_decay']) == (0.01, 0.01)
    # Built from mmpretrain's default scope, the balancer registry is found.
    assert REGISTRY_WARNING not in out


EMA_AND_MIXUP = """
custom_hooks = [dict(type='EMAHook', momentum=0.5, begin_iter=0)]
model = dict(teacher_ckpt={teacher!r}, student=dict(train_cfg=dict(augments=[
    dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)])))
"""


@pytest.fixture(scope='module')
def ema_run(tmp_path_factory, shapes_root, teacher_ckpt):
    """Three iterations with EMA and Mixup/CutMix, validated at the end."""
    tmp_path = tmp_path_factory.mktemp('ema')
    config = _config(
        tmp_path,
        shapes_root,
        teacher_ckpt,
        max_iters=3,
        extra=EMA_AND_MIXUP.format(teacher=teacher_ckpt),
    )
    out = _train(config, tmp_path / 'run')
    return tmp_path, out


def test_ema_weights_are_validated_exported_and_tested(ema_run, shapes_root):
    tmp_path, out = ema_run
    ckpt_path = str(tmp_path / 'run' / 'iter_3.pth')
    ckpt = torch.load(ckpt_path, weights_only=False)
    # MMEngine saves the averaged weights as the state dict, the trained
    # ones under ema_state_dict; the teacher is in neither.
    raw = {k[len('module.') :]: v for k, v in ckpt['ema_state_dict'].items() if k != 'steps'}
    assert not any(k.startswith(('teacher.', '_teacher.')) for k in [*raw, *ckpt['state_dict']])
    weight = 'student.backbone.conv1.weight'
    assert not torch.equal(ckpt['state_dict'][weight], raw[weight])

    averaged, trained = str(tmp_path / 'ema.pth'), str(tmp_path / 'raw.pth')
    _run([PYTHON, 'tools/export_student.py', ckpt_path, averaged])
    _run([PYTHON, 'tools/export_student.py', ckpt_path, trained, '--no-ema'])
    assert torch.equal(
        torch.load(averaged)['state_dict']['backbone.conv1.weight'], ckpt['state_dict'][weight]
    )
    assert torch.equal(torch.load(trained)['state_dict']['backbone.conv1.weight'], raw[weight])
    # Validation in training used the averaged student; so does its export.
    validated = float(out.split('accuracy/top1: ')[-1].split()[0])
    student_cfg = tmp_path / 'student.py'
    student_cfg.write_text(
        f'_base_ = [{STUDENT_CFG!r}]\n'
        f'test_dataloader = dict(dataset=dict(data_root={shapes_root!r}))\n'
    )
    tested = _run(
        [PYTHON, 'tools/test.py', str(student_cfg), averaged, '--work-dir', str(tmp_path / 'e')]
    )
    assert float(tested.split('accuracy/top1: ')[1].split()[0]) == validated


def test_mixup_and_cutmix_reach_the_student_as_soft_targets(ema_run):
    _, out = ema_run
    assert 'student.loss' in out and 'nan' not in out.split('Iter(train) [3/3]')[1].split('\n')[0]


@pytest.mark.skipif(
    not osp.exists(osp.join(REPO, '.venv', 'bin', 'python')), reason='no .venv (tools/setup_env.sh)'
)
def test_the_readme_commands_run_in_a_fresh_shell(tmp_path, shapes_root, teacher_ckpt):
    """A shell whose PATH has no environment: `bash tools/dist_train.sh`
    finds the project's .venv by itself; `python tools/train.py` runs after
    `source .venv/bin/activate`, as the README says."""
    config = _config(tmp_path, shapes_root, teacher_ckpt, max_iters=1)
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHON', 'PYTHONPATH')}
    env.update(PATH='/usr/bin:/bin', OMP_NUM_THREADS='1')
    for command in (
        f'bash tools/dist_train.sh {config} 1 --work-dir {tmp_path}/dist',
        f'source .venv/bin/activate && python tools/train.py {config} --work-dir {tmp_path}/one',
    ):
        result = subprocess.run(
            ['bash', '-c', command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, command + '\n' + result.stderr[-3000:]
    assert osp.exists(tmp_path / 'dist' / 'iter_1.pth') and osp.exists(
        tmp_path / 'one' / 'iter_1.pth'
    )
