"""One rule for the teacher side of every distillation loss: a teacher
feature that reaches the loss as it is stays a target; one a connector
lifted trains the connector's teacher-side projection."""

import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn

from mokd_mm.core import FeatureTaps
from mokd_mm.models.distillers import DistillLoss

LOSSES = [
    dict(type='KLDivergenceLoss'),
    dict(type='SigmoidKLDivergenceLoss'),
    dict(type='StandardizedFeatureLoss'),
    dict(type='TokenMatchingLoss'),
    dict(type='TeacherLayerNormFeatureLoss'),
    dict(type='HardDistillationLoss'),
]


def _loss_and_features(loss_cfg, connector):
    student, teacher = nn.Linear(3, 6), nn.Linear(3, 6)
    taps = [FeatureTaps(m, dict(out=''), role) for m, role in ((student, 's'), (teacher, 't'))]
    cfg = dict(loss_cfg, student='out', teacher='out', connector=connector)
    with DefaultScope.overwrite_default_scope('mmengine'):
        loss = DistillLoss('loss', cfg, *taps)
    x = torch.randn(8, 3)
    teacher_feat = teacher(x)  # recorded with a graph, to see what reaches it
    teacher_feat.retain_grad()
    return loss, dict(out=student(x)), dict(out=teacher_feat)


@pytest.mark.parametrize('loss_cfg', LOSSES, ids=[c['type'] for c in LOSSES])
def test_a_teacher_feature_is_a_target_and_a_teacher_projection_learns(loss_cfg):
    loss, student, teacher = _loss_and_features(loss_cfg, None)
    loss(student, teacher).backward()
    assert teacher['out'].grad is None  # detached: the teacher gets nothing
    loss, student, teacher = _loss_and_features(
        loss_cfg, dict(type='IndefiniteSubspaceConnector', student_dim=6, teacher_dim=6)
    )
    loss(student, teacher).backward()
    projection = loss.connectors[0].teacher_proj.proj.parametrizations.weight.original
    assert teacher['out'].grad is None  # still a target
    if loss_cfg['type'] == 'HardDistillationLoss':  # the teacher's argmax has no gradient
        assert projection.grad is None or not projection.grad.any()
    else:
        assert projection.grad is not None and projection.grad.abs().sum() > 0
