"""MoKDOptimWrapper on small models, against hand-computed updates."""

import copy
import json

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.visualization import Visualizer
from torch import nn

from mokd_mm.core.balancers import MoKDAmortized, NonFiniteObjectiveError, min_norm_weights
from mokd_mm.core.gradients import gram_matrix
from mokd_mm.engine import MoKDOptimWrapper, NonFiniteUpdateError
from tests.conftest import assert_the_faster_objective_loses_weight


class TwoObjectives(nn.Module):
    """A linear model with two quadratic objectives that disagree."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        torch.manual_seed(0)
        self.x = torch.randn(8, 3)
        self.a, self.b = torch.randn(8, 2), torch.randn(8, 2) + 2

    def objectives(self):
        y = self.lin(self.x)
        return dict(distill=((y - self.a) ** 2).mean() + 0.1, task=((y - self.b) ** 2).mean() + 0.1)


def _wrapper(model, lr=0.1, **kwargs):
    return MoKDOptimWrapper(torch.optim.SGD(model.parameters(), lr=lr), **kwargs)


def _step(wrapper, model, objectives=None):
    """One step of the loop, as MoKDDistiller.train_step runs it: backward,
    step, and the balancer's update from the re-evaluated objectives."""
    values = wrapper.backward(model.objectives() if objectives is None else objectives)
    if wrapper.should_update():
        stepped = wrapper.step()
        wrapper.zero_grad()
        if stepped:
            after = None
            if wrapper.balancer.needs_reevaluation:
                with torch.no_grad(), wrapper.autocast():  # as the step's forward ran
                    after = model.objectives()
            wrapper.update_balancer(values, after)
    return wrapper.log_vars()


def _flat_grads(model, loss):
    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    return torch.cat([g.reshape(-1) for g in grads])


def _params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_fixed_weights_equal_the_weighted_sum():
    model, ref = TwoObjectives(), TwoObjectives()
    ref.load_state_dict(model.state_dict())
    wrapper = _wrapper(
        model, balancer=dict(type='FixedWeights', weights=dict(distill=0.3, task=2.0))
    )
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        logs = wrapper.update_params(model.objectives())
        obj = ref.objectives()
        (0.3 * obj['distill'] + 2.0 * obj['task']).backward()
        opt.step()
        opt.zero_grad()
    assert torch.allclose(_params(model), _params(ref), atol=1e-6)
    assert wrapper.balancer.applied.tolist() == pytest.approx([0.3, 2.0])
    assert logs == pytest.approx({'mokd/weight_distill': 0.3, 'mokd/weight_task': 2.0})


def test_default_is_mokd_amortized_with_same_batch_reevaluation():
    model = TwoObjectives()
    start = copy.deepcopy(model)
    wrapper = _wrapper(
        model,
        balancer=dict(type='MoKDAmortized', optimizer=dict(type='SGD', lr=0.5)),
        diagnostics_interval=0,
    )
    obj = model.objectives()
    before = torch.stack([obj['distill'], obj['task']]).detach()
    _step(wrapper, model, obj)
    # Model step: weights c z_i / L_i on the raw gradients, z = (1/2, 1/2).
    ref_obj = start.objectives()
    w = 0.5 / before
    w = w / w.sum()
    grad = _flat_grads(start, w[0] * ref_obj['distill'] + w[1] * ref_obj['task'])
    assert torch.allclose(_params(model), _params(start) - 0.1 * grad, atol=1e-6)
    # Logit step from the re-evaluated objectives (SGD, lr 0.5).
    with torch.no_grad():
        after = torch.stack(list(model.objectives().values()))
    delta = torch.log(before) - torch.log(after)
    expected = -0.5 * 0.25 * torch.stack([delta[0] - delta[1], delta[1] - delta[0]])
    assert torch.allclose(wrapper.balancer.logits.detach(), expected, atol=1e-6)
    assert isinstance(_wrapper(TwoObjectives()).balancer, MoKDAmortized)


def test_same_batch_needs_the_parts_of_the_step_and_next_batch_does_not():
    model = TwoObjectives()
    with pytest.raises(ValueError, match=r'call backward\(\), step\(\)'):
        _wrapper(model).update_params(model.objectives())
    wrapper = _wrapper(model, balancer=dict(type='MoKDAmortized', update='next_batch'))
    first = wrapper.backward(model.objectives())
    wrapper.step()
    wrapper.zero_grad()
    wrapper.update_balancer(first)
    assert torch.equal(wrapper.balancer.logits, torch.zeros(2))  # nothing learned yet
    second = model.objectives()
    wrapper.update_params(second)  # learns from the first step, with this batch as its after
    after = torch.stack([second['distill'], second['task']]).detach()
    assert_the_faster_objective_loses_weight(wrapper.balancer, first, after)


def test_exact_rule_is_theorem_3_1():
    model = TwoObjectives()
    start = copy.deepcopy(model)
    wrapper = _wrapper(model, balancer=dict(type='MoKDExact'))
    logs = wrapper.update_params(model.objectives())
    obj = start.objectives()
    g1 = _flat_grads(start, torch.log(obj['distill']))
    g2 = _flat_grads(start, torch.log(obj['task']))
    pi = min_norm_weights(gram_matrix([g1, g2]))
    step = (pi[0] * g1 + pi[1] * g2).float()
    assert torch.allclose(_params(model), _params(start) - 0.1 * step, atol=1e-6)
    assert [logs['mokd/pi_distill'], logs['mokd/pi_task']] == pytest.approx(pi.tolist())


def test_clipping_acts_on_the_balanced_update_and_accumulation():
    model = TwoObjectives()
    wrapper = _wrapper(
        model,
        balancer=dict(type='FixedWeights'),
        clip_grad=dict(max_norm=1e-3),
        accumulative_counts=2,
    )
    start = _params(model)
    wrapper.update_params(model.objectives())
    assert torch.equal(_params(model), start)  # accumulating
    wrapper.update_params(model.objectives())
    assert (_params(model) - start).norm() == pytest.approx(0.1 * 1e-3, rel=1e-3)


def test_accumulation_divides_every_rule_like_mmengine():
    """Two micro-batches of an accumulated step give the mean update."""
    for balancer in (dict(type='FixedWeights'), dict(type='MGDA')):
        model, ref = TwoObjectives(), TwoObjectives()
        ref.load_state_dict(model.state_dict())
        _wrapper(model, balancer=balancer, accumulative_counts=2).update_params(model.objectives())
        once = _wrapper(ref, balancer=balancer)
        once.update_params(ref.objectives())
        grads = [p.grad for p in model.parameters()]
        # The step of `ref` was taken; `model` only accumulated half of it.
        moved = [(p0 - p1) / 0.1 for p0, p1 in zip(TwoObjectives().parameters(), ref.parameters())]
        for g, m in zip(grads, moved):
            assert torch.allclose(g, m / 2, atol=1e-6)


@pytest.mark.parametrize('balancer', ['MoKDAmortized', 'MoKDExact', 'PCGrad'])
@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_mixed_precision(balancer, dtype):
    """Half precision gets where float32 gets, to its precision (the
    objectives after the same number of steps taken); under float16 the
    overflowing first steps of the dynamic scale are skipped, not taken."""
    rule = dict(type=balancer, seed=0) if balancer == 'PCGrad' else dict(type=balancer)
    model, reference = TwoObjectives(), TwoObjectives()
    wrapper = _wrapper(model, balancer=rule, dtype=dtype)
    taken = 0
    for _ in range(8):
        with wrapper.optim_context(model):
            obj = model.objectives()
        before = _params(model)
        _step(wrapper, model, obj)
        taken += int(not torch.equal(before, _params(model)))
    assert (wrapper.loss_scaler is not None) == (dtype == 'float16')
    other = _wrapper(reference, balancer=rule)
    start = {k: float(v.detach()) for k, v in reference.objectives().items()}
    for _ in range(taken):
        _step(other, reference)
    with torch.no_grad():
        half, full = model.objectives(), reference.objectives()
    for name in ('distill', 'task'):
        assert float(full[name]) < start[name]  # the reference made progress
        assert float(half[name]) == pytest.approx(float(full[name]), rel=0.05), name


def test_diagnostics_are_written_at_the_measured_iterations_only(tmp_path):
    vis = Visualizer.get_instance(
        'test_mokd_diagnostics', vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path)
    )
    model = TwoObjectives()
    wrapper = _wrapper(model, diagnostics_interval=2)
    measured = []
    for it in range(5):
        wrapper.message_hub.update_info('iter', it)
        obj = model.objectives()
        if it % 2 == 0:
            g1, g2 = _flat_grads(model, obj['distill']), _flat_grads(model, obj['task'])
            measured.append((it + 1, float(g1 @ g2), float(g1.norm() / g2.norm())))
        logs = _step(wrapper, model, obj)
        assert not any('conflict' in k for k in logs)  # not step scalars
    records = [json.loads(line) for line in open(tmp_path / 'vis_data' / 'scalars.json')]
    assert [r['step'] for r in records] == [m[0] for m in measured]
    for record, (_, conflict, dominance) in zip(records, measured):
        assert record['mokd/conflict'] == pytest.approx(conflict, rel=1e-5)
        assert record['mokd/dominance'] == pytest.approx(dominance, rel=1e-5)
    del vis


def test_state_dict_resumes_exactly():
    def wrapper_of(model):
        return _wrapper(
            model, balancer=dict(type='MoKDAmortized', optimizer=dict(type='Adam', lr=0.3))
        )

    model = TwoObjectives()
    wrapper = wrapper_of(model)
    for _ in range(3):
        _step(wrapper, model)
    state = copy.deepcopy(wrapper.state_dict())
    model_state = copy.deepcopy(model.state_dict())
    _step(wrapper, model)

    resumed = TwoObjectives()
    resumed.load_state_dict(model_state)
    other = wrapper_of(resumed)
    other.load_state_dict(state)
    # MMEngine's runner restores the step count (the diagnostics follow it).
    other.initialize_count_status(resumed, init_counts=3, max_counts=10)
    _step(other, resumed)
    assert torch.equal(_params(model), _params(resumed))
    assert torch.equal(wrapper.balancer.logits, other.balancer.logits)
    with pytest.raises(ValueError, match='saved with balancer MoKDAmortized'):
        _wrapper(TwoObjectives(), balancer=dict(type='MoKDExact')).load_state_dict(state)


def test_bad_input_is_named():
    model = TwoObjectives()
    wrapper = _wrapper(model)
    with pytest.raises(
        KeyError, match=r"\['kd'\] are not configured and \['distill'\] are missing"
    ):
        wrapper.backward(dict(kd=torch.tensor(1.0), task=torch.tensor(1.0)))
    with pytest.raises(TypeError, match='MoKDDistributedDataParallel'):
        wrapper.backward(torch.tensor(1.0))
    obj = model.objectives()
    obj['task'] = obj['task'] * float('nan')
    with pytest.raises(
        NonFiniteObjectiveError,
        match=r'task=nan \(from the losses student.loss_cls=nan\) before the step; the step '
        r'is not taken',
    ):
        wrapper.backward(
            obj, losses={'student.loss_cls': obj['task'], 'distill.loss_kl': obj['distill']}
        )
    assert torch.isfinite(wrapper.balancer.logits).all()
    # Non-finite only when the batch is evaluated again, after the step.
    values = wrapper.backward(model.objectives())
    wrapper.step()
    with pytest.raises(
        NonFiniteObjectiveError,
        match=r'distill=inf \(from the losses distill.loss_kl=inf\) in the same-batch '
        r're-evaluation after the step \(the step was taken',
    ):
        after = dict(distill=torch.tensor(float('inf')), task=torch.tensor(1.0))
        wrapper.update_balancer(values, after, {'distill.loss_kl': after['distill']})
    with pytest.raises(KeyError, match='Nope'):
        _wrapper(model, balancer=dict(type='Nope'))


def test_a_non_finite_update_is_not_taken():
    """A finite objective with a non-finite gradient (sqrt at 0) stops the
    step before the optimizer changes anything."""
    model = TwoObjectives()
    start = _params(model)
    for balancer in ('FixedWeights', 'MoKDExact', 'MGDA'):
        wrapper = _wrapper(model, balancer=dict(type=balancer))
        obj = model.objectives()
        obj['distill'] = obj['distill'] + torch.sqrt(model.lin.weight[0, 0] * 0)
        with pytest.raises(NonFiniteUpdateError, match=r'not finite.*lin.weight.*not taken'):
            wrapper.param_names = {id(p): f'lin.{n}' for n, p in model.lin.named_parameters()}
            wrapper.backward(obj)
            wrapper.step()
        wrapper.zero_grad()
    assert torch.equal(_params(model), start)


def test_balancer_arguments_the_wrapper_derives_are_checked_not_overwritten():
    model = TwoObjectives()
    with pytest.raises(ValueError, match=r'balancer.num_objectives=3 but .* num_objectives=2'):
        _wrapper(model, balancer=dict(type='FixedWeights', num_objectives=3))
    with pytest.raises(
        ValueError, match=r"balancer.names=\['a', 'b'\] but .*\['distill', 'task'\]"
    ):
        _wrapper(model, balancer=dict(type='FixedWeights', names=['a', 'b']))
    agreeing = dict(type='FixedWeights', num_objectives=2, names=['distill', 'task'])
    assert _wrapper(model, balancer=agreeing).balancer.names == ['distill', 'task']


def test_objectives_left_out_are_reported_in_the_run_log(tmp_path):
    log_file = tmp_path / 'run.log'
    MMLogger.get_instance('test_left_out', log_file=str(log_file))
    model = TwoObjectives()
    wrapper = _wrapper(
        model, balancer=dict(type='MoKDExact', min_losses=[100.0, 0.0]), diagnostics_interval=0
    )
    wrapper.update_params(model.objectives())
    text = log_file.read_text()
    assert "MoKDExact, step 1: objective(s) ['distill'] are not above their lower bound" in text
