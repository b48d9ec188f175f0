"""The weighting rules of mokd_mm.core against the paper's statements."""
import itertools

import pytest
import torch

from mokd_mm.core import AmortizedWeighting, NonFiniteObjectiveError, min_norm_weights
from mokd_mm.core.gradients import gram_matrix


def _norm_of_combination(gram, pi):
    return float(pi @ gram @ pi)


def _random_gradients(seed, k=2, n=50, conflict=None):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(k, n, generator=gen, dtype=torch.float64)
    g = g * torch.rand(k, 1, generator=gen, dtype=torch.float64) * 10
    if conflict is not None and float(g[0] @ g[1]) * conflict < 0:
        g[1] = -g[1]
    return list(g)


@pytest.mark.parametrize('seed', range(20))
def test_two_objective_closed_form_matches_brute_force(seed):
    grads = _random_gradients(seed)
    gram = gram_matrix(grads)
    pi = min_norm_weights(gram)
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    a = grid[:, None]
    norms = (a * grads[0] + (1 - a) * grads[1]).norm(dim=1)
    best = grid[int(torch.argmin(norms))]
    assert pi.sum().item() == pytest.approx(1.0)
    assert (pi >= 0).all()
    assert pi[0].item() == pytest.approx(best.item(), abs=1e-4)


@pytest.mark.parametrize('seed', range(20))
def test_theorem_formula_and_corollaries_on_conflicting_gradients(seed):
    g1, g2 = _random_gradients(seed, conflict=-1)
    gram = gram_matrix([g1, g2])
    g11, g12, g22 = gram[0, 0], gram[0, 1], gram[1, 1]
    pi = min_norm_weights(gram)
    # Conflicting gradients: the unconstrained optimum is interior (eq. 11-12).
    expected = (g22 - g12) / (g11 + g22 - 2 * g12)
    assert pi[0].item() == pytest.approx(expected.item(), rel=1e-9)
    assert pi[1].item() == pytest.approx(((g11 - g12) / (g11 + g22 - 2 * g12)).item(), rel=1e-9)
    g = pi[0] * g1 + pi[1] * g2
    # Corollaries 3.2 / 3.3: equal, non-negative contribution to both.
    a, b = float(g @ g1), float(g @ g2)
    assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    assert a >= 0
    assert a == pytest.approx(float((g11 * g22 - g12**2) / (g1 - g2).norm()**2), rel=1e-9)
    # |g|^2 = <g, g1> = (g11 g22 - g12^2) / |g1 - g2|^2 (appendix B.2).
    assert float(g @ g) == pytest.approx(a, rel=1e-9, abs=1e-12)
    # Corollary 3.5 (as proved in appendix B.5): |g| <= |g1||g2| / |g1 - g2|.
    assert g.norm() <= g1.norm() * g2.norm() / (g1 - g2).norm() + 1e-12


@pytest.mark.parametrize('seed', range(20))
def test_lower_bound_of_corollary_3_4_without_conflict(seed):
    g1, g2 = _random_gradients(seed, conflict=+1)
    pi = min_norm_weights(gram_matrix([g1, g2]))
    g = pi[0] * g1 + pi[1] * g2
    assert g.norm() >= min(g1.norm(), g2.norm()) / 2**0.5 - 1e-12


def test_corollary_3_4_fails_for_nearly_opposite_gradients():
    """The paper's proof of Corollary 3.4 uses |g|^2 = |g1|^2 |g2|^2 /
    |g1 - g2|^2, but the numerator is det(G) = g11 g22 - g12^2: under strong
    conflict the min-norm update shrinks towards zero (a Pareto-stationary
    point), below min(|g1|, |g2|) / sqrt(2)."""
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 0.01], dtype=torch.float64)
    pi = min_norm_weights(gram_matrix([g1, g2]))
    g = pi[0] * g1 + pi[1] * g2
    assert g.norm() < 0.01 < min(g1.norm(), g2.norm()) / 2**0.5


def test_aligned_gradients_are_clipped_to_the_simplex():
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([3.0, 0.1], dtype=torch.float64)  # g12 > g11
    pi = min_norm_weights(gram_matrix([g1, g2]))
    assert pi.tolist() == pytest.approx([1.0, 0.0])


def test_degenerate_cases():
    g = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert min_norm_weights(gram_matrix([g, g.clone()])).tolist() == pytest.approx([0.5, 0.5])
    zero = torch.zeros(2, dtype=torch.float64)
    # A zero gradient is stationary: it is left out rather than stalling.
    assert min_norm_weights(gram_matrix([zero, g])).tolist() == pytest.approx([0.0, 1.0])
    assert min_norm_weights(gram_matrix([zero, zero])).tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match='square'):
        min_norm_weights(torch.zeros(2, 3))


@pytest.mark.parametrize('seed', range(5))
def test_three_objectives_match_brute_force(seed):
    grads = _random_gradients(seed, k=3, n=4)
    gram = gram_matrix(grads)
    pi = min_norm_weights(gram)
    steps = 200
    best = min(
        _norm_of_combination(gram, torch.tensor([i / steps, j / steps, 1 - (i + j) / steps],
                                                dtype=torch.float64))
        for i, j in itertools.product(range(steps + 1), repeat=2) if i + j <= steps)
    assert pi.sum().item() == pytest.approx(1.0)
    assert _norm_of_combination(gram, pi) <= best + 1e-9


def test_amortized_step_by_hand():
    w = AmortizedWeighting(2, lr=0.1, weight_decay=0.0,
                           optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    losses = torch.stack([theta[0]**2, 3 * theta[1]])  # 1, 6
    scalar = w.combine(losses)
    scalar.backward()
    # z = (1/2, 1/2); weights on raw gradients proportional to z_i / L_i.
    c = 1 / (0.5 / 1 + 0.5 / 6)
    expected = [c * 0.5 / 1 * 2 * 1.0, c * 0.5 / 6 * 3]
    assert theta.grad.tolist() == pytest.approx(expected)
    # Gradient equals that of FAMO's c * sum z_i log L_i with c detached.
    theta2 = theta.detach().clone().requires_grad_(True)
    l2 = torch.stack([theta2[0]**2, 3 * theta2[1]])
    (c * (0.5 * torch.log(l2)).sum()).backward()
    assert theta.grad.tolist() == pytest.approx(theta2.grad.tolist())

    after = torch.tensor([0.5, 5.0])
    delta = w.update(losses.detach(), after)
    assert delta.tolist() == pytest.approx([float(torch.log(torch.tensor(1 / 0.5))),
                                            float(torch.log(torch.tensor(6 / 5.0)))])
    # softmax Jacobian at z = (1/2, 1/2): J = [[1/4, -1/4], [-1/4, 1/4]].
    d0, d1 = delta.tolist()
    grad = [0.25 * (d0 - d1), 0.25 * (d1 - d0)]
    assert w.logits.detach().tolist() == pytest.approx([-0.1 * grad[0], -0.1 * grad[1]])
    # The objective that improved more (the first) loses weight.
    assert w.weights()[0] < 0.5


def test_amortized_defaults_follow_the_paper():
    w = AmortizedWeighting(2)
    assert isinstance(w.optimizer, torch.optim.AdamW)
    group = w.optimizer.param_groups[0]
    assert group['lr'] == 0.025 and group['weight_decay'] == 0.01
    assert w.weights().tolist() == [0.5, 0.5]


def test_non_positive_objective_is_skipped_and_nan_raises():
    w = AmortizedWeighting(2, names=['distill', 'task'])
    weights = w.effective_weights(torch.tensor([0.0, 2.0]))
    assert weights.tolist() == [0.0, 1.0]
    assert w.effective_weights(torch.tensor([-1.0, 0.0])).tolist() == [0.0, 0.0]
    delta = w.update(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0]))
    assert delta[0].item() == 0.0 and torch.isfinite(w.logits).all()
    with pytest.raises(NonFiniteObjectiveError, match='task=nan'):
        w.effective_weights(torch.tensor([1.0, float('nan')]))
    with pytest.raises(NonFiniteObjectiveError, match='distill=inf'):
        w.update(torch.tensor([float('inf'), 1.0]), torch.tensor([1.0, 1.0]))
    assert torch.isfinite(w.logits).all()


def test_amortized_state_round_trip():
    a = AmortizedWeighting(3)
    for _ in range(3):
        a.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.9, 2.0]))
    b = AmortizedWeighting(3)
    b.load_state_dict(a.state_dict())
    a.update(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.9, 0.8, 0.7]))
    b.update(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.9, 0.8, 0.7]))
    assert torch.equal(a.logits, b.logits)
    with pytest.raises(ValueError, match='3 objectives'):
        AmortizedWeighting(2).load_state_dict(a.state_dict())


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_min_norm_weights_of_a_cuda_gram():
    grads = [g.cuda() for g in _random_gradients(0, k=3, n=10)]
    pi = min_norm_weights(gram_matrix(grads))
    assert pi.sum().item() == pytest.approx(1.0)
