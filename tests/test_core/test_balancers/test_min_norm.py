"""The min-norm solvers against the paper's statements and brute force."""

import itertools

import pytest
import torch

from mokd_mm.core.balancers import frank_wolfe_min_norm_weights, min_norm_weights
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
    assert a == pytest.approx(float((g11 * g22 - g12**2) / (g1 - g2).norm() ** 2), rel=1e-9)
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
        _norm_of_combination(
            gram, torch.tensor([i / steps, j / steps, 1 - (i + j) / steps], dtype=torch.float64)
        )
        for i, j in itertools.product(range(steps + 1), repeat=2)
        if i + j <= steps
    )
    assert pi.sum().item() == pytest.approx(1.0)
    assert _norm_of_combination(gram, pi) <= best + 1e-9


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_min_norm_weights_of_a_cuda_gram():
    grads = [g.cuda() for g in _random_gradients(0, k=3, n=10)]
    pi = min_norm_weights(gram_matrix(grads))
    assert pi.sum().item() == pytest.approx(1.0)


def test_mgda_solver_clips_pairs_and_matches_the_exact_solution_inside():
    """Sener & Koltun's solver: the pair in closed form with the weight
    clipped to [0.001, 0.999]; for K > 2 its iterations reach the min-norm
    point."""
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([3.0, 0.1], dtype=torch.float64)  # <g1, g2> >= |g1|^2
    assert frank_wolfe_min_norm_weights(gram_matrix([g1, g2])).tolist() == pytest.approx(
        [0.999, 0.001]
    )
    assert frank_wolfe_min_norm_weights(gram_matrix([g2, g1])).tolist() == pytest.approx(
        [0.001, 0.999]
    )
    for seed in range(5):
        grads = _random_gradients(seed, k=2, conflict=-1)
        gram = gram_matrix(grads)
        assert frank_wolfe_min_norm_weights(gram).tolist() == pytest.approx(
            min_norm_weights(gram).tolist(), rel=1e-9
        )
        grads = _random_gradients(seed, k=4, n=3)
        gram = gram_matrix(grads)
        pi = frank_wolfe_min_norm_weights(gram)
        assert pi.sum().item() == pytest.approx(1.0) and (pi >= 0).all()
        exact = min_norm_weights(gram)
        assert _norm_of_combination(gram, pi) == pytest.approx(
            _norm_of_combination(gram, exact), rel=1e-3, abs=1e-6
        )


def _brute_force_over_faces(gram):
    """Min of pi^T G pi on the simplex, face by face: on the affine hull of
    each face the minimiser is G_S^+ 1 / (1^T G_S^+ 1) (least squares when
    G_S is singular); kept when it lies inside the face."""
    k = gram.shape[0]
    best = float('inf')
    for size in range(1, k + 1):
        for face in itertools.combinations(range(k), size):
            sub = gram[list(face)][:, list(face)]
            ones = torch.ones(size, dtype=gram.dtype)
            x = torch.linalg.pinv(sub) @ ones
            if abs(float(ones @ x)) < 1e-12:
                continue
            x = x / (ones @ x)
            if (x < -1e-12).any():
                continue
            pi = torch.zeros(k, dtype=gram.dtype)
            pi[list(face)] = x.clamp(min=0)
            best = min(best, float(pi @ gram @ pi))
    return best


@pytest.mark.parametrize('k', [3, 4])
def test_mgda_reaches_the_min_norm_point_for_three_and_more_objectives(k):
    """The exact point (brute force over every face of the simplex, and the
    KKT certificate: (G pi)_i >= pi^T G pi with equality where pi_i > 0);
    the authors' iterative solver stops near it."""
    from mokd_mm.core.balancers import MGDA

    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        grads = torch.randn(k, 6, generator=gen, dtype=torch.float64)
        if seed % 3 == 0:  # a strong conflict puts the optimum inside the simplex
            grads[1] = -0.9 * grads[0] + 0.1 * grads[1]
        gram = grads @ grads.T
        rule = MGDA(k)
        rule.combine_gradients(grads, torch.ones(k, dtype=torch.float64))
        pi = rule.applied
        value = float(pi @ gram @ pi)
        assert value == pytest.approx(_brute_force_over_faces(gram), rel=1e-9, abs=1e-12)
        slack = gram @ pi - value
        assert (slack > -1e-9 * max(value, 1e-12)).all()
        assert (slack[pi > 1e-9].abs() < 1e-8 * max(value, 1.0)).all()
        authors = frank_wolfe_min_norm_weights(gram)
        assert float(authors @ gram @ authors) == pytest.approx(value, rel=0.05, abs=1e-12)
