"""MoKDDistiller on mmpretrain classifiers (the demo's teacher and student)."""

import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIM_WRAPPERS, DefaultScope
from mmpretrain.registry import DATASETS

from tests.conftest import (
    MOKD_CFG,
    assert_the_faster_objective_loses_weight,
    build_in_scope,
    record_balancer_updates,
)


def _cfg(teacher_ckpt, **overrides):
    cfg = Config.fromfile(MOKD_CFG)
    model = copy.deepcopy(cfg.model.to_dict())
    model['teacher_ckpt'] = teacher_ckpt
    model['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    model.update(overrides)
    return cfg, model


def _batch(cfg, shapes_root, n=8):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=shapes_root))
    return pseudo_collate([dataset[i] for i in range(n)])


def _wrapper(model, **kwargs):
    cfg = dict(
        type='MoKDOptimWrapper',
        constructor='MoKDOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.05),
        **kwargs,
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_optim_wrapper(model, cfg)


def test_teacher_is_loaded_frozen_and_outside_the_checkpoint(teacher_ckpt):
    _, model_cfg = _cfg(teacher_ckpt)
    distiller = build_in_scope(model_cfg)
    saved = torch.load(teacher_ckpt)['state_dict']
    # Built without reading the file (testing needs no teacher)...
    assert not torch.equal(
        distiller.teacher.state_dict()['head.fc.weight'], saved['head.fc.weight']
    )
    distiller.eval()
    assert not distiller._teacher_loaded
    # ... loaded when training starts.
    distiller.train()
    teacher_state = distiller.teacher.state_dict()
    assert all(torch.equal(saved[k], teacher_state[k]) for k in saved)
    assert not any(k.startswith('teacher') for k in distiller.state_dict())
    assert any(k.startswith('distill_losses.loss_feat.connectors') for k in distiller.state_dict())
    teacher_params = {id(p) for p in distiller.teacher.parameters()}
    assert not teacher_params & {id(p) for p in distiller.parameters()}
    assert not any(p.requires_grad for p in distiller.teacher.parameters())
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    distiller.double()
    assert next(distiller.teacher.parameters()).dtype == torch.float64
    wrapper = _wrapper(distiller)
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    assert not teacher_params & in_optimizer
    assert wrapper.objectives == ['distill', 'task']


def test_train_step_updates_student_and_connectors_only(teacher_ckpt, shapes_root):
    cfg, model_cfg = _cfg(teacher_ckpt)
    distiller = build_in_scope(model_cfg)
    distiller.train()
    wrapper = _wrapper(distiller)
    teacher_before = copy.deepcopy(distiller.teacher.state_dict())
    student_before = copy.deepcopy(distiller.student.state_dict())
    conn = distiller.distill_losses['loss_feat'].connectors[0]
    metric_before = conn.metric.detach().clone()
    updates = record_balancer_updates(wrapper)
    log_vars = distiller.train_step(_batch(cfg, shapes_root), wrapper)
    for key in (
        'student.loss',
        'distill.loss_kl',
        'distill.loss_feat',
        'loss_distill',
        'loss_task',
        'mokd/pi_distill',
        'mokd/pi_task',
    ):
        assert key in log_vars
    assert float(log_vars['loss_distill']) == pytest.approx(
        float(log_vars['distill.loss_kl']) + float(log_vars['distill.loss_feat']), rel=1e-5
    )
    teacher_after = distiller.teacher.state_dict()
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)
    student_after = distiller.student.state_dict()
    assert not torch.equal(student_before['head.fc.weight'], student_after['head.fc.weight'])
    assert not torch.equal(metric_before, conn.metric)
    # The same-batch re-evaluation left BatchNorm statistics alone: one
    # training forward counted.
    assert int(student_after['backbone.bn1.num_batches_tracked']) == 1
    # The first step applied pi = 1/2 (Algorithm 1, line 2), then the
    # amortized rule learned from the re-evaluated objectives.
    assert log_vars['mokd/pi_distill'] == 0.5
    ((before, after),) = updates
    assert_the_faster_objective_loses_weight(wrapper.balancer, before, after)


def test_predict_runs_the_student_or_the_teacher(teacher_ckpt, shapes_root):
    cfg, model_cfg = _cfg(teacher_ckpt)
    distiller = build_in_scope(model_cfg).eval()
    data = distiller.data_preprocessor(_batch(cfg, shapes_root, 4), False)
    out = distiller(data['inputs'], data['data_samples'], mode='tensor')
    assert torch.equal(out, distiller.student(data['inputs'], mode='tensor'))
    preds = distiller.val_step(_batch(cfg, shapes_root, 4))
    assert len(preds) == 4 and preds[0].pred_score.shape == (4,)
    _, teacher_cfg = _cfg(teacher_ckpt, predict_with='teacher')
    as_teacher = build_in_scope(teacher_cfg).eval()
    out_t = as_teacher(data['inputs'], data['data_samples'], mode='tensor')
    assert torch.equal(out_t, as_teacher.teacher(data['inputs'], mode='tensor'))


def test_bad_input_is_named(teacher_ckpt, tmp_path):
    _, base = _cfg(teacher_ckpt)

    def build(**changes):
        cfg = copy.deepcopy(base)
        cfg.update(changes)
        return build_in_scope(cfg)

    missing = build(teacher_ckpt=str(tmp_path / 'missing.pth'))  # fine until training
    with pytest.raises(FileNotFoundError, match='teacher_ckpt .*missing.pth.* does not exist'):
        missing.train()
    bad = torch.load(teacher_ckpt)
    bad['state_dict']['head.fc.extra'] = torch.zeros(1)
    del bad['state_dict']['head.fc.bias']
    torch.save(bad, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=r'head\.fc\.bias'):
        build(teacher_ckpt=str(tmp_path / 'bad.pth')).train()
    with pytest.raises(KeyError, match="student tap 'logits'.*did you mean"):
        build(student_taps=dict(feat=dict(module='neck', index=-1), logits='head.fcc'))
    losses = copy.deepcopy(base['distill_losses'])
    losses['loss_kl']['teacher'] = 'probs'
    with pytest.raises(KeyError, match="reads teacher tap 'probs'"):
        build(distill_losses=losses)
    with pytest.raises(ValueError, match=r"\['extra'\] are read by no"):
        build(teacher_taps=dict(base['teacher_taps'], extra='head'))
    losses = copy.deepcopy(base['distill_losses'])
    losses['loss_kl']['connector'] = dict(type='LinearConnector', student_dim=5, teacher_dim=4)
    with pytest.raises(
        ValueError,
        match='loss_kl: the connector expects student_dim=5 but '
        "student tap 'logits' \\(module 'head.fc'\\) has 4",
    ):
        build(distill_losses=losses)
    losses = copy.deepcopy(base['distill_losses'])
    losses['loss_feat']['connector'] = dict(type='LinearConnector')
    with pytest.raises(
        ValueError,
        match='loss_feat: cannot tell the channels of student tap '
        "'feat' from its module; give the connector student_dim",
    ):
        # An item of the neck's tuple output: no layer declares its width.
        build(
            distill_losses=losses,
            student_taps=dict(feat=dict(module='neck', index=-1), logits='head.fc'),
        )
    with pytest.raises(ValueError, match="'distill.loss_feat' is assigned to no objective"):
        build(objectives=dict(distill=['distill.loss_kl'], task=['student.*']))
    with pytest.raises(ValueError, match='several objectives'):
        build(objectives=dict(distill=['distill.*'], task=['*']))


def test_student_losses_without_objective_and_wrapper_mismatch(teacher_ckpt, shapes_root):
    cfg, model_cfg = _cfg(
        teacher_ckpt, objectives=dict(distill=['distill.*'], task=['student.loss_cls'])
    )
    distiller = build_in_scope(model_cfg)
    wrapper = _wrapper(distiller)
    with pytest.raises(ValueError, match="'student.loss' is assigned to no objective"):
        distiller.train_step(_batch(cfg, shapes_root), wrapper)
    with pytest.raises(ValueError, match=r"objectives=\['task', 'distill'\].*declares"):
        _wrapper(distiller, objectives=['task', 'distill'])
    plain = OPTIM_WRAPPERS.build(
        dict(type='OptimWrapper', optimizer=torch.optim.SGD(distiller.parameters(), lr=0.1))
    )
    with pytest.raises(TypeError, match='MoKDOptimWrapper'):
        distiller.train_step(_batch(cfg, shapes_root), plain)


def test_model_config_from_a_file_with_overrides():
    from mokd_mm.models.distillers import load_model_config
    from tests.conftest import TEACHER_CFG

    cfg = load_model_config(dict(config=TEACHER_CFG, head=dict(num_classes=7)), 'teacher')
    assert cfg['head']['num_classes'] == 7 and cfg['head']['in_channels'] == 128
    assert cfg['_scope_'] == 'mmpretrain'
    with pytest.raises(FileNotFoundError, match="teacher config 'nope.py'"):
        load_model_config(dict(config='nope.py'), 'teacher')


def test_every_distillation_loss_counts_whatever_its_name(teacher_ckpt, shapes_root):
    """A distillation loss named without 'loss' is still optimized; the
    student's non-loss outputs (accuracies) are only logged."""
    cfg, model_cfg = _cfg(teacher_ckpt)
    losses = model_cfg['distill_losses']
    model_cfg['distill_losses'] = dict(kl=losses['loss_kl'], feat=losses['loss_feat'])
    distiller = build_in_scope(model_cfg).train()
    data = distiller.data_preprocessor(_batch(cfg, shapes_root), True)
    raw = distiller(data['inputs'], data['data_samples'], mode='loss')
    raw['student.accuracy'] = torch.tensor(0.7)
    objectives, log_vars = distiller.objectives.sum(raw)
    assert objectives['distill'].item() == pytest.approx(
        (raw['distill.kl'] + raw['distill.feat']).item(), rel=1e-6
    )
    assert objectives['task'].item() == pytest.approx(raw['student.loss'].item())
    assert float(log_vars['student.accuracy']) == pytest.approx(0.7)


def test_a_loss_receives_extra_named_inputs_and_taps_record_only_in_training(
    teacher_ckpt, shapes_root
):
    from mmengine.registry import MODELS

    @MODELS.register_module(force=True)
    class WeightedByTeacherConfidence(torch.nn.Module):
        """A loss that needs more than the matched features."""

        def forward(self, student, teacher, confidence):
            self.seen = confidence
            weight = confidence.softmax(-1).max(-1).values
            return ((student - teacher) ** 2).mean(-1).mul(weight).mean()

    cfg, model_cfg = _cfg(teacher_ckpt)
    model_cfg['distill_losses']['loss_kl'] = dict(
        type='WeightedByTeacherConfidence',
        student='logits',
        teacher='logits',
        teacher_inputs=dict(confidence='logits'),
    )
    distiller = build_in_scope(model_cfg).train()
    wrapper = _wrapper(distiller)
    distiller.train_step(_batch(cfg, shapes_root), wrapper)
    assert distiller.distill_losses['loss_kl'].loss.seen.shape == (8, 4)
    distiller.eval()
    distiller.val_step(_batch(cfg, shapes_root, 4))
    assert distiller.taps['student']._calls == {} and distiller.taps['teacher']._calls == {}
    bad = copy.deepcopy(model_cfg)
    bad['distill_losses']['loss_kl']['teacher_inputs'] = dict(confidence='probs')
    with pytest.raises(KeyError, match="reads teacher tap 'probs'"):
        build_in_scope(bad)
