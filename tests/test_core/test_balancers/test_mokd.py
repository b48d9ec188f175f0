"""MoKD's amortized and exact rules against hand computations."""

import warnings

import pytest
import torch

from mokd_mm.core.balancers import (
    MoKDAmortized,
    MoKDExact,
    NonFiniteObjectiveError,
    NoObjectiveError,
)
from mokd_mm.core.balancers.min_norm import min_norm_weights


def _two_losses(theta):
    return torch.stack([theta[0] ** 2, 3 * theta[1]])  # 1 and 6 at theta = (1, 2)


def test_amortized_step_by_hand():
    rule = MoKDAmortized(2, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    losses = _two_losses(theta)
    rule.backward(losses)
    # z = (1/2, 1/2); weights on the raw gradients proportional to z_i / L_i.
    c = 1 / (0.5 / 1 + 0.5 / 6)
    assert theta.grad.tolist() == pytest.approx([c * 0.5 / 1 * 2 * 1.0, c * 0.5 / 6 * 3])
    # That is the gradient of FAMO's c * sum z_i log L_i with c detached.
    theta2 = theta.detach().clone().requires_grad_(True)
    (c * 0.5 * torch.log(_two_losses(theta2))).sum().backward()
    assert theta.grad.tolist() == pytest.approx(theta2.grad.tolist())

    after = torch.tensor([0.5, 5.0])
    rule.update(losses.detach(), after)
    d0, d1 = torch.log(torch.tensor([1 / 0.5, 6 / 5.0])).tolist()
    # softmax Jacobian at z = (1/2, 1/2): [[1/4, -1/4], [-1/4, 1/4]]; SGD step.
    assert rule.logits.detach().tolist() == pytest.approx(
        [-0.1 * 0.25 * (d0 - d1), -0.1 * 0.25 * (d1 - d0)]
    )
    assert torch.softmax(rule.logits, 0)[0] < 0.5  # the objective that improved more loses weight
    logs = rule.log_vars()
    assert logs['pi_0'] == logs['pi_1'] == 0.5  # what the step applied
    assert logs['weight_0'] == pytest.approx(c * 0.5)


def test_amortized_optimizer_is_a_config_dict():
    paper = MoKDAmortized(2)
    assert type(paper.optimizer) is torch.optim.AdamW
    assert paper.optimizer.param_groups[0]['lr'] == 0.025
    assert paper.optimizer.param_groups[0]['weight_decay'] == 0.01
    famo = MoKDAmortized(2, optimizer=dict(type='Adam', lr=0.025, weight_decay=0.01))
    assert type(famo.optimizer) is torch.optim.Adam
    # Coupled L2 (Adam) and decoupled decay (AdamW) differ from the second step.
    for rule in (paper, famo):
        for _ in range(3):
            rule.update(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.9]))
    assert not torch.allclose(paper.logits, famo.logits)
    with pytest.raises(ValueError, match="'Nope' is not a torch.optim"):
        MoKDAmortized(2, optimizer=dict(type='Nope'))


def test_amortized_computes_in_the_objectives_dtype():
    """float64 objectives give float64 logits and an update equal to FAMO's
    formulas evaluated in float64."""
    rule = MoKDAmortized(3, optimizer=dict(type='Adam', lr=0.025, weight_decay=0.01))
    ref_w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    ref_opt = torch.optim.Adam([ref_w], lr=0.025, weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        before = torch.rand(3, generator=gen, dtype=torch.float64) + 0.1
        after = before * (0.8 + 0.3 * torch.rand(3, generator=gen, dtype=torch.float64))
        weights = rule.objective_weights(before)
        z = torch.softmax(ref_w.detach(), 0)
        expected = z / (before + 1e-8)
        assert weights.dtype == torch.float64
        assert torch.allclose(weights, expected / expected.sum(), rtol=1e-14, atol=0)
        rule.update(before, after)
        delta = torch.log(before + 1e-8) - torch.log(after + 1e-8)
        ref_opt.zero_grad()
        ref_w.grad = torch.autograd.grad(torch.softmax(ref_w, 0), ref_w, delta)[0]
        ref_opt.step()
    assert rule.logits.dtype == torch.float64
    assert torch.allclose(rule.logits, ref_w, rtol=1e-13, atol=1e-15)


def test_amortized_next_batch_learns_from_the_next_objectives():
    rule = MoKDAmortized(2, update='next_batch', optimizer=lambda p: torch.optim.SGD(p, lr=1.0))
    assert not rule.needs_reevaluation
    rule.objective_weights(torch.tensor([1.0, 1.0]))
    rule.update(torch.tensor([1.0, 1.0]))
    assert rule.logits.tolist() == [0.0, 0.0]  # pending until the next batch
    rule.objective_weights(torch.tensor([0.5, 1.0]))
    assert rule.logits[0] < 0 < rule.logits[1]
    with pytest.raises(ValueError, match='re-evaluated after the step'):
        MoKDAmortized(2).update(torch.tensor([1.0, 1.0]))


def test_an_objective_not_above_its_bound_is_left_out_with_a_warning():
    rule = MoKDAmortized(2, names=['distill', 'task'], min_losses=[0.5, 0.0], warn_interval=3)
    with pytest.warns(RuntimeWarning, match=r"\['distill'\] are not above their lower bound"):
        weights = rule.objective_weights(torch.tensor([0.4, 2.0]))
    assert weights.tolist() == [0.0, 1.0]
    # The logged weights are the applied ones, not softmax(w).
    assert rule.log_vars()['pi_distill'] == 0.0 and rule.log_vars()['pi_task'] == 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(5):
            rule.objective_weights(torch.tensor([0.4, 2.0]))
    assert len(caught) == 1  # of steps 2-6, only step 4 (= 1 + 3) warns
    rule.update(torch.tensor([0.4, 2.0]), torch.tensor([0.45, 1.0]))
    assert rule.logits[0] > rule.logits[1]  # only the task took part: it improved
    with pytest.raises(NonFiniteObjectiveError, match='task=nan'):
        rule.objective_weights(torch.tensor([1.0, float('nan')]))
    with pytest.raises(NonFiniteObjectiveError, match='distill=inf'):
        rule.update(torch.tensor([float('inf'), 1.0]), torch.tensor([1.0, 1.0]))
    assert torch.isfinite(rule.logits).all()


def test_when_every_objective_is_below_its_bound_nothing_learns_then_training_stops():
    reports = []
    rule = MoKDAmortized(2, names=['distill', 'task'], min_losses=1.0, warn_interval=3)
    rule.report = reports.append
    below = torch.tensor([0.4, 0.5])
    for step in range(2):
        assert rule.objective_weights(below).tolist() == [0.0, 0.0]
        rule.update(below, below * 0.5)
    # Nothing measured: no step on the logits, not even momentum or decay.
    assert torch.equal(rule.logits, torch.zeros(2)) and not rule.optimizer.state
    assert rule.log_vars()['pi_distill'] == rule.log_vars()['pi_task'] == 0.0
    assert reports == [
        "MoKDAmortized, step 1: objective(s) ['distill', 'task'] are not above their lower "
        'bound (min_losses: no logarithm) (distill=0.4, task=0.5), so they get weight 0 '
        'while that lasts (reported every 3 steps)'
    ]
    with pytest.raises(NoObjectiveError, match=r'every objective .* for 3 steps in a row'):
        rule.objective_weights(below)
    # An objective measured again resets the count.
    rule = MoKDAmortized(2, min_losses=1.0, warn_interval=2)
    rule.report = reports.append
    rule.objective_weights(below)
    rule.objective_weights(torch.tensor([2.0, 0.5]))
    rule.objective_weights(below)  # one all-out step after the reset: no error


def test_amortized_state_round_trip():
    a = MoKDAmortized(3, update='next_batch')
    for i in range(3):
        a.objective_weights(torch.tensor([1.0, 2.0, 3.0]) / (i + 1))
        a.update(torch.tensor([1.0, 2.0, 3.0]) / (i + 1))
    b = MoKDAmortized(3, update='next_batch')
    b.load_state_dict(a.state_dict())
    for rule in (a, b):
        rule.objective_weights(torch.tensor([0.9, 0.8, 0.7]))
    assert torch.equal(a.logits, b.logits)
    with pytest.raises(ValueError, match='3 objectives'):
        MoKDAmortized(2).load_state_dict(a.state_dict())


def test_exact_rule_is_theorem_3_1_on_log_gradients():
    gen = torch.Generator().manual_seed(0)
    grads = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    grads[1] = -grads[1] + 0.1 * torch.randn(7, generator=gen, dtype=torch.float64)
    losses = torch.tensor([0.5, 4.0], dtype=torch.float64)
    rule = MoKDExact(2, names=['distill', 'task'])
    direction = rule.combine_gradients(grads, losses)
    g1, g2 = grads[0] / 0.5, grads[1] / 4.0  # grad log L_i
    g11, g12, g22 = g1 @ g1, g1 @ g2, g2 @ g2
    pi1 = (g22 - g12) / (g11 + g22 - 2 * g12)
    assert torch.allclose(direction, pi1 * g1 + (1 - pi1) * g2, rtol=1e-12)
    logs = rule.log_vars()
    assert logs['pi_distill'] == pytest.approx(float(pi1), rel=1e-12)
    assert logs['weight_distill'] == pytest.approx(float(pi1) / 0.5, rel=1e-12)


def test_exact_rule_famo_scale_is_log_mgda_divided_by_c():
    """FAMO's log-MGDA: the same direction divided by c = sum_i pi_i / L_i,
    so the weights on the raw gradients sum to 1; at losses of 0.01 and
    0.05 the paper's step is 20 to 100 times longer."""
    gen = torch.Generator().manual_seed(1)
    grads = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    losses = torch.tensor([0.01, 0.05], dtype=torch.float64)
    paper = MoKDExact(2).combine_gradients(grads, losses)
    rule = MoKDExact(2, scale='famo')
    famo = rule.combine_gradients(grads, losses)
    pi = rule.pi
    c = (pi / losses).sum()
    assert torch.allclose(famo, paper / c, rtol=1e-12)
    assert float(rule.applied.sum()) == pytest.approx(1.0)
    assert 20 <= float(c) <= 100
    with pytest.raises(ValueError, match='scale'):
        MoKDExact(2, scale='raw')


def test_exact_rule_leaves_out_an_objective_at_its_bound():
    grads = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    rule = MoKDExact(3)
    with pytest.warns(RuntimeWarning, match=r"\['1'\]"):
        direction = rule.combine_gradients(grads, torch.tensor([1.0, 0.0, 2.0]))
    assert rule.pi[1] == 0
    pi = min_norm_weights(torch.tensor([[1.0, 0.5], [0.5, 0.5]]))  # log-grads 0 and 2
    assert torch.allclose(direction, pi[0].float() * grads[0] + pi[1].float() * grads[2] / 2)
