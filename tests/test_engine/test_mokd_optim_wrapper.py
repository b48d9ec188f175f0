"""MoKDOptimWrapper on small models, against hand-computed updates."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from mokd_mm.core import NonFiniteObjectiveError, min_norm_weights
from mokd_mm.core.gradients import gram_matrix
from mokd_mm.engine import MoKDOptimWrapper


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
        return dict(distill=((y - self.a)**2).mean() + 0.1, task=((y - self.b)**2).mean() + 0.1)


def _wrapper(model, lr=0.1, **kwargs):
    return MoKDOptimWrapper(torch.optim.SGD(model.parameters(), lr=lr), **kwargs)


def _flat_grads(model, loss):
    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    return torch.cat([g.reshape(-1) for g in grads])


def _params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_fixed_mode_equals_the_weighted_sum():
    model, ref = TwoObjectives(), TwoObjectives()
    ref.load_state_dict(model.state_dict())
    wrapper = _wrapper(model, mode='fixed', weights=dict(distill=0.3, task=2.0))
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        wrapper.update_params(model.objectives())
        obj = ref.objectives()
        (0.3 * obj['distill'] + 2.0 * obj['task']).backward()
        opt.step()
        opt.zero_grad()
    assert torch.allclose(_params(model), _params(ref), atol=1e-6)
    assert wrapper.weights == pytest.approx(dict(distill=0.3, task=2.0))


def test_famo_step_and_logit_update_by_hand():
    model = TwoObjectives()
    start = copy.deepcopy(model)
    wrapper = _wrapper(model, weighting=dict(lr=0.5, weight_decay=0.0),
                       diagnostics_interval=0)
    obj = model.objectives()
    before = torch.stack([obj['distill'], obj['task']]).detach()
    wrapper.update_params(obj, reevaluate=model.objectives)

    # Model step: weights c z_i / L_i on the raw gradients, z = (1/2, 1/2).
    ref_obj = start.objectives()
    w = 0.5 / before
    w = w / w.sum()
    grad = _flat_grads(start, w[0] * ref_obj['distill'] + w[1] * ref_obj['task'])
    assert torch.allclose(_params(model), _params(start) - 0.1 * grad, atol=1e-6)

    # Logit step: AdamW's first step moves each logit by lr * sign(grad).
    with torch.no_grad():
        after = torch.stack(list(model.objectives().values()))
    delta = torch.log(before) - torch.log(after)
    logit_grad = torch.tensor([0.25 * (delta[0] - delta[1]), 0.25 * (delta[1] - delta[0])])
    expected = -0.5 * torch.sign(logit_grad)
    assert torch.allclose(wrapper.weighting.logits.detach(), expected, atol=1e-4)


def test_famo_same_batch_needs_reevaluate_and_next_batch_does_not():
    model = TwoObjectives()
    with pytest.raises(ValueError, match='reevaluate'):
        _wrapper(model).update_params(model.objectives())
    wrapper = _wrapper(model, famo_update='next_batch')
    wrapper.update_params(model.objectives())
    assert wrapper.weights['distill'] == 0.5  # nothing learned yet
    wrapper.update_params(model.objectives())
    assert wrapper.weights['distill'] != 0.5


def test_exact_mode_is_theorem_3_1():
    model = TwoObjectives()
    start = copy.deepcopy(model)
    wrapper = _wrapper(model, mode='exact')
    wrapper.update_params(model.objectives())
    obj = start.objectives()
    g1 = _flat_grads(start, torch.log(obj['distill']))
    g2 = _flat_grads(start, torch.log(obj['task']))
    pi = min_norm_weights(gram_matrix([g1, g2]))
    step = (pi[0] * g1 + pi[1] * g2).float()
    assert torch.allclose(_params(model), _params(start) - 0.1 * step, atol=1e-6)
    assert list(wrapper.weights.values()) == pytest.approx(pi.tolist())


def test_clipping_acts_on_the_combined_gradient_and_accumulation():
    model = TwoObjectives()
    wrapper = _wrapper(model, mode='fixed', weights=dict(distill=1.0, task=1.0),
                       clip_grad=dict(max_norm=1e-3), accumulative_counts=2)
    start = _params(model)
    wrapper.update_params(model.objectives())
    assert torch.equal(_params(model), start)  # accumulating
    wrapper.update_params(model.objectives())
    assert (_params(model) - start).norm() == pytest.approx(0.1 * 1e-3, rel=1e-3)


@pytest.mark.parametrize('mode', ['famo', 'exact'])
@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_mixed_precision(mode, dtype):
    model = TwoObjectives()
    wrapper = _wrapper(model, mode=mode, dtype=dtype)
    start = _params(model)
    for _ in range(8):  # float16: the dynamic scale first backs off from 2^16
        with wrapper.optim_context(model):
            obj = model.objectives()
        wrapper.update_params(obj, reevaluate=model.objectives)
    assert (wrapper.loss_scaler is not None) == (dtype == 'float16')
    assert torch.isfinite(_params(model)).all() and not torch.equal(_params(model), start)


def test_weights_and_diagnostics_reach_the_message_hub():
    hub = MessageHub.get_instance('test_mokd_wrapper')
    model = TwoObjectives()
    wrapper = _wrapper(model, diagnostics_interval=2)
    wrapper.message_hub = hub
    logs = wrapper.update_params(model.objectives(), reevaluate=model.objectives)
    assert set(logs) == {'mokd/pi_distill', 'mokd/pi_task', 'mokd/conflict',
                         'mokd/conflict_cos', 'mokd/dominance'}
    obj = model.objectives()
    g1, g2 = _flat_grads(model, obj['distill']), _flat_grads(model, obj['task'])
    logs = wrapper.update_params(model.objectives(), reevaluate=model.objectives)
    assert 'mokd/conflict' not in logs  # every 2nd update only
    logs = wrapper.update_params(obj, reevaluate=model.objectives)
    assert logs['mokd/conflict'] == pytest.approx(float(g1 @ g2), rel=1e-5)
    assert logs['mokd/dominance'] == pytest.approx(float(g1.norm() / g2.norm()), rel=1e-5)
    assert hub.get_scalar('train/mokd/pi_task').current() == logs['mokd/pi_task']


def test_state_dict_resumes_exactly():
    model = TwoObjectives()
    wrapper = _wrapper(model, weighting=dict(lr=0.3))
    for _ in range(3):
        wrapper.update_params(model.objectives(), reevaluate=model.objectives)
    state = copy.deepcopy(wrapper.state_dict())
    model_state = copy.deepcopy(model.state_dict())
    wrapper.update_params(model.objectives(), reevaluate=model.objectives)

    resumed = TwoObjectives()
    resumed.load_state_dict(model_state)
    other = _wrapper(resumed, weighting=dict(lr=0.3))
    other.load_state_dict(state)
    other.update_params(resumed.objectives(), reevaluate=resumed.objectives)
    assert torch.equal(_params(model), _params(resumed))
    assert torch.equal(wrapper.weighting.logits, other.weighting.logits)
    with pytest.raises(ValueError, match="mode='exact'"):
        _wrapper(TwoObjectives(), mode='exact').load_state_dict(state)


def test_bad_input_is_named():
    model = TwoObjectives()
    wrapper = _wrapper(model)
    with pytest.raises(KeyError, match=r"\['kd'\] are not configured and \['distill'\] are missing"):
        wrapper.update_params(dict(kd=torch.tensor(1.0), task=torch.tensor(1.0)))
    with pytest.raises(TypeError, match='MoKDDistributedDataParallel'):
        wrapper.update_params(torch.tensor(1.0))
    obj = model.objectives()
    obj['task'] = obj['task'] * float('nan')
    with pytest.raises(NonFiniteObjectiveError, match='task=nan'):
        wrapper.update_params(obj, reevaluate=model.objectives)
    assert torch.isfinite(wrapper.weighting.logits).all()
    with pytest.raises(ValueError, match='mode must be one of'):
        _wrapper(model, mode='mgda')
    with pytest.raises(ValueError, match="needs weights for exactly"):
        _wrapper(model, mode='fixed', weights=dict(distill=1.0))
