"""The balancer interface: one balanced backward pass, with the hooks the
MMEngine adapter uses (averaging over processes, loss scaling)."""

import pytest
import torch

from mokd_mm.core.balancers import (
    RULES,
    Balancer,
    FixedWeights,
    MoKDExact,
    NonFiniteObjectiveError,
    PCGrad,
)


class Spy(Balancer):
    """A gradient rule that records what it sees and returns the sum."""

    needs_gradients = True

    def _combine_gradients(self, grads, losses):
        self.seen = (grads.clone(), losses.clone())
        return grads.sum(0), torch.ones(self.num_objectives)


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _objectives(model):
    y = model(torch.ones(4, 3))
    return torch.stack([(y[:, 0] ** 2).mean() + 1, (y[:, 1] - 2).abs().mean() + 1])


def test_loss_rule_backward_scales_and_reduces():
    plain, scaled = _model(), _model()
    FixedWeights(2, weights=[0.5, 2.0]).backward(_objectives(plain))
    seen = []

    def reduce(t):
        seen.append(t.clone())
        return t * 0 + torch.tensor([3.0, 1.0])  # "the mean over processes"

    rule = FixedWeights(2, weights=[0.5, 2.0])
    values = rule.backward(_objectives(scaled), reduce=reduce, scale=8.0)
    assert values.tolist() == [3.0, 1.0] and len(seen) == 1
    for p, q in zip(plain.parameters(), scaled.parameters()):
        assert torch.allclose(q.grad, 8.0 * p.grad)


def test_gradient_rule_sees_unscaled_reduced_gradients_and_writes_scaled_grads():
    model = _model()
    params = list(model.parameters())
    objectives = _objectives(model)
    raw = torch.stack(
        [
            torch.cat([g.flatten() for g in torch.autograd.grad(o, params, retain_graph=True)])
            for o in objectives
        ]
    )
    rule = Spy(2)
    calls = []

    def reduce(t):
        calls.append(t.shape)
        return t

    rule.backward(objectives, params, reduce=reduce, scale=4.0)
    # The objectives, the gradients and which parameters each reaches: once each.
    assert calls == [torch.Size([2]), raw.shape, torch.Size([2, len(params)])]
    assert torch.allclose(rule.seen[0], raw, atol=1e-6)
    written = torch.cat([p.grad.flatten() for p in params])
    assert torch.allclose(written, 4.0 * raw.sum(0), atol=1e-5)
    with pytest.raises(ValueError, match='needs the parameters'):
        Spy(2).backward(_objectives(model))


def test_every_rule_runs_resumes_and_rejects_non_finite_objectives():
    for rule_cls in RULES:
        model = _model()
        rule = rule_cls(2, names=['distill', 'task'])
        params = list(model.parameters())
        for _ in range(2):
            objectives = _objectives(model)
            rule.backward(objectives, params)
            with torch.no_grad():
                for p in params:
                    p -= 0.1 * p.grad
                    p.grad = None
            after = _objectives(model).detach() if rule.needs_reevaluation else None
            rule.update(objectives.detach(), after)
        clone = rule_cls(2, names=['distill', 'task'])
        clone.load_state_dict(rule.state_dict())
        with pytest.raises(NonFiniteObjectiveError, match='task=nan'):
            rule.backward(torch.tensor([1.0, float('nan')], requires_grad=True), params)
        with pytest.raises(KeyError, match='unknown entries'):
            clone.load_state_dict(dict(rule.state_dict(), bogus=1))


def test_interface_misuse_is_named():
    with pytest.raises(ValueError, match='>= 2 objectives'):
        FixedWeights(1)
    with pytest.raises(ValueError, match='2 objectives but 3 names'):
        FixedWeights(2, names=['a', 'b', 'c'])
    with pytest.raises(TypeError, match='call combine_gradients'):
        MoKDExact(2).objective_weights(torch.ones(2))
    with pytest.raises(TypeError, match='call objective_weights'):
        FixedWeights(2).combine_gradients(torch.ones(2, 3), torch.ones(2))
    with pytest.raises(ValueError, match=r'shape \(2, P\)'):
        PCGrad(2).combine_gradients(torch.ones(3, 3), torch.ones(2))
    with pytest.raises(ValueError, match='expected 2 objectives'):
        FixedWeights(2).objective_weights(torch.ones(3))
