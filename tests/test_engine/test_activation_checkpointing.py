"""Activation checkpointing in the student or the teacher (``with_cp``, as
mmpretrain's ResNet and mmdet's Swin call ``torch.utils.checkpoint``) gives
the same update as without it, under every balancer, the gradient
diagnostics and the same-batch re-evaluation included."""

import functools

import pytest
import torch
import torch.utils.checkpoint as cp
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mokd_mm.core.balancers import RULES
from tests.conftest import MOKD_CFG, build_in_scope
from tests.test_engine.test_balancers_in_training import _batch, _optimizer

NAMES = [rule.__name__ for rule in RULES]


def _train(balancer, student_cp=False, teacher_cp=False, steps=2):
    cfg = Config.fromfile(MOKD_CFG)
    model = cfg.model.to_dict()
    model['student']['backbone']['with_cp'] = student_cp
    model['teacher'] = Config.fromfile(model['teacher']).model.to_dict()
    model['teacher']['backbone']['with_cp'] = teacher_cp
    model.update(teacher_ckpt=None, data_preprocessor=cfg.data_preprocessor.to_dict())
    torch.manual_seed(0)
    distiller = build_in_scope(model).train()
    wrapper_cfg = dict(
        type='MoKDOptimWrapper',
        constructor='MoKDOptimWrapperConstructor',
        optimizer=_optimizer(balancer),
        balancer=dict(type=balancer, seed=0)
        if balancer in ('PCGrad', 'GradDrop')
        else dict(type=balancer),
        diagnostics_interval=1,  # per-objective gradients at every step
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(distiller, wrapper_cfg)
    for step in range(steps):
        log_vars = distiller.train_step(_batch(step), wrapper)
    state = {k: v.detach().clone() for k, v in distiller.student.state_dict().items()}
    return state, log_vars


@pytest.mark.parametrize('balancer', NAMES)
def test_reentrant_checkpointing_in_the_student_gives_the_same_update(balancer):
    plain, plain_logs = _train(balancer)
    checkpointed, logs = _train(balancer, student_cp=True)
    for key, value in plain.items():
        torch.testing.assert_close(checkpointed[key], value, rtol=1e-5, atol=1e-6, msg=key)
    for key in plain_logs:
        if key.startswith('mokd/'):
            assert logs[key] == pytest.approx(plain_logs[key], rel=1e-4, abs=1e-6), key


@pytest.mark.parametrize('balancer', ['MoKDAmortized', 'MoKDExact'])
def test_checkpointing_in_both_models_and_the_non_reentrant_variant(balancer, monkeypatch):
    plain, _ = _train(balancer)
    both, _ = _train(balancer, student_cp=True, teacher_cp=True)
    monkeypatch.setattr(cp, 'checkpoint', functools.partial(cp.checkpoint, use_reentrant=False))
    non_reentrant, _ = _train(balancer, student_cp=True, teacher_cp=True)
    for key, value in plain.items():
        torch.testing.assert_close(both[key], value, rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(non_reentrant[key], value, rtol=1e-5, atol=1e-6, msg=key)
