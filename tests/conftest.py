"""Shared fixtures: a small generated image set and a random-init teacher
checkpoint in MMEngine's format (nothing is downloaded)."""

import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import mokd_mm  # noqa: F401  (registers the components)
from mokd_mm.datasets import make_shape_classification

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEACHER_CFG = osp.join(REPO, 'configs/demo/resnet18-w16_shapes.py')
STUDENT_CFG = osp.join(REPO, 'configs/demo/resnet18-w8_shapes.py')
MOKD_CFG = osp.join(REPO, 'configs/mokd/shapes/mokd_resnet18-w16_resnet18-w8_1xb16-300it_shapes.py')


def build_in_scope(cfg: dict, scope: str = 'mmpretrain'):
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    return make_shape_classification(
        str(tmp_path_factory.mktemp('data') / 'shapes_cls'), num_train=64, num_val=32
    )


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory):
    """A checkpoint of the demo teacher (random init, non-trivial BN stats)."""
    torch.manual_seed(0)
    teacher = build_in_scope(Config.fromfile(TEACHER_CFG).model)
    for module in teacher.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return str(path)


def record_balancer_updates(wrapper):
    """Record the (before, after) objectives every ``balancer.update`` of
    ``wrapper`` receives, for tests of the direction the weights move."""
    calls, update = [], wrapper.balancer.update

    def recording(before, after=None):
        calls.append((before.detach().clone(), None if after is None else after.clone()))
        return update(before, after)

    wrapper.balancer.update = recording
    return calls


def assert_the_faster_objective_loses_weight(balancer, before, after):
    """The amortized rule's first step from pi = 1/2: the objective whose
    log fell more over the step loses weight (Algorithm 1)."""
    drop = torch.log(before) - torch.log(after)
    pi = torch.softmax(balancer.logits.detach(), 0)
    faster = int(torch.argmax(drop))
    assert pi[faster] < 0.5 < pi[1 - faster], (drop.tolist(), pi.tolist())
