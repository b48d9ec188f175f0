"""Minimum-norm points of the convex hull of K gradients, from their Gram
matrix ``G = J^T J`` (K, K).

* :func:`min_norm_weights` solves the problem exactly (MoKD's eq. 9; for
  two objectives the closed form of Theorem 3.1, kept on the simplex).
* :func:`frank_wolfe_min_norm_weights` is the solver in MGDA's public code
  (Sener & Koltun, NeurIPS 2018, ``MinNormSolver``): the best pair in
  closed form with weights clipped to [0.001, 0.999], then projected
  gradient steps with an exact line search, until a step is small; close
  to, not at, the min-norm point.

Both work on a (K, K) matrix in float64 on the CPU: K is small, the solve is
cheap and the gradients' dtype is kept for the (K, P) work around it.
"""

import torch

__all__ = ['min_norm_weights', 'frank_wolfe_min_norm_weights']

MAX_EXACT_OBJECTIVES = 10


def _as_gram(gram: torch.Tensor) -> torch.Tensor:
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f'gram must be a square matrix, got {tuple(gram.shape)}')
    return gram.detach().to('cpu', torch.float64)


def _two_objective_weights(gram: torch.Tensor) -> torch.Tensor:
    """Theorem 3.1: pi_1 = (g22 - g12) / (g11 + g22 - 2 g12), clipped to
    [0, 1]; 1/2 when g1 == g2 (every point gives the same update)."""
    g11, g12, g22 = gram[0, 0], gram[0, 1], gram[1, 1]
    denom = g11 + g22 - 2 * g12  # = |g1 - g2|^2 >= 0
    scale = torch.clamp(g11 + g22, min=torch.finfo(gram.dtype).tiny)
    if denom <= 1e-12 * scale:
        pi1 = torch.tensor(0.5, dtype=gram.dtype)
    else:
        pi1 = ((g22 - g12) / denom).clamp(0.0, 1.0)
    return torch.stack([pi1, 1 - pi1])


def _active_set_weights(gram: torch.Tensor) -> torch.Tensor:
    """Exact min-norm point for K > 2: the optimum lies in the relative
    interior of some face of the simplex, where it solves the KKT system
    ``[G_S 1; 1^T 0] [pi_S; mu] = [0; 1]``; every face is tried (2^K - 1 of
    them, K is small) and the feasible solution of least norm kept."""
    k = gram.shape[0]
    if k > MAX_EXACT_OBJECTIVES:
        raise ValueError(f'exact weights support up to {MAX_EXACT_OBJECTIVES} objectives, got {k}')
    best, best_value = None, float('inf')
    for mask in range(1, 2**k):
        idx = [i for i in range(k) if mask >> i & 1]
        n = len(idx)
        kkt = torch.zeros(n + 1, n + 1, dtype=gram.dtype)
        kkt[:n, :n] = gram[idx][:, idx]
        kkt[:n, n] = kkt[n, :n] = 1.0
        rhs = torch.zeros(n + 1, dtype=gram.dtype)
        rhs[n] = 1.0
        sol = torch.linalg.lstsq(kkt, rhs.unsqueeze(1)).solution.squeeze(1)
        if not torch.allclose(kkt @ sol, rhs, atol=1e-9):
            continue
        sub = sol[:n]
        if (sub < -1e-12).any():
            continue
        pi = torch.zeros(k, dtype=gram.dtype)
        pi[idx] = sub.clamp(min=0)
        pi = pi / pi.sum()
        value = float(pi @ gram @ pi)
        if value < best_value - 1e-15:
            best, best_value = pi, value
    return best


def min_norm_weights(gram: torch.Tensor) -> torch.Tensor:
    """The weights pi on the simplex that minimise ``|J pi|^2`` (eq. 9).

    Objectives whose gradient is exactly zero are left out of the solve and
    get weight 0: they are stationary, so the others can descend without
    first-order harm to them (keeping them would return the zero update and
    stall training). If every gradient is zero the weights are uniform.

    Args:
        gram (Tensor): ``G = J^T J`` of the K gradients, (K, K), symmetric
            positive semi-definite.

    Returns:
        Tensor: pi, shape (K,), float64 on the CPU, non-negative, summing to 1.
    """
    gram = _as_gram(gram)
    k = gram.shape[0]
    active = torch.diagonal(gram) > 0
    if not bool(active.any()):
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    idx = torch.nonzero(active).flatten()
    sub = gram[idx][:, idx]
    if len(idx) == 1:
        sub_pi = torch.ones(1, dtype=gram.dtype)
    elif len(idx) == 2:
        sub_pi = _two_objective_weights(sub)
    else:
        sub_pi = _active_set_weights(sub)
    pi = torch.zeros(k, dtype=gram.dtype)
    pi[idx] = sub_pi
    return pi


def _pair_min_norm(v11: float, v12: float, v22: float):
    """min over c in [0, 1] of |c x1 + (1 - c) x2|^2 with MGDA's clipping:
    returns (c, the squared norm)."""
    if v12 >= v11:
        return 0.999, v11
    if v12 >= v22:
        return 0.001, v22
    c = (v22 - v12) / (v11 + v22 - 2 * v12)
    return c, v22 + c * (v12 - v22)


def _project_to_simplex(y: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the simplex (sort-based)."""
    m = y.numel()
    ordered = torch.sort(y, descending=True).values
    shift = (float(y.sum()) - 1.0) / m
    running = 0.0
    for i in range(m - 1):
        running += float(ordered[i])
        candidate = (running - 1.0) / (i + 1)
        if candidate > float(ordered[i + 1]):
            shift = candidate
            break
    return torch.clamp(y - shift, min=0.0)


def _next_point(current: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """A step along ``direction`` made tangent to the simplex, as long as
    the first coordinate reaches a face, then projected back."""
    tangent = direction - direction.sum() / direction.numel()
    neg, pos = tangent < 0, tangent > 0
    to_zero = -current[neg] / tangent[neg]
    to_one = (1.0 - current[pos]) / tangent[pos]
    step = 1.0
    if bool((to_zero > 1e-7).any()):
        step = float(to_zero[to_zero > 1e-7].min())
    if bool((to_one > 1e-7).any()):
        step = min(step, float(to_one[to_one > 1e-7].min()))
    return _project_to_simplex(tangent * step + current)


def frank_wolfe_min_norm_weights(
    gram: torch.Tensor, tol: float = 1e-5, max_iter: int = 10**6
) -> torch.Tensor:
    """MGDA's min-norm solver as its authors wrote it (Sener & Koltun,
    2018, ``MinNormSolver.find_min_norm_element``).

    Starts from the best pair of gradients (closed form, the weight clipped
    to [0.001, 0.999]); for K > 2 it then alternates a projected gradient
    step on the simplex with an exact line search between the current and
    the new point, until a step moves the weights by less than ``tol`` (L1),
    and returns the weights before that step. The authors' loop declares a
    cap of 250 iterations but never counts it; here ``max_iter`` is a
    safety net only (small problems took up to 724 iterations), reaching it
    is an error. The result is not the exact min-norm point (the pair step
    never reaches a face of the simplex, and the stopping rule is on the
    step, not on optimality): :func:`min_norm_weights` is.

    Args:
        gram (Tensor): (K, K) Gram matrix of the gradients.

    Returns:
        Tensor: weights, shape (K,), float64 on the CPU, summing to 1.
    """
    gram = _as_gram(gram)
    k = gram.shape[0]
    best = None
    for i in range(k):
        for j in range(i + 1, k):
            c, value = _pair_min_norm(float(gram[i, i]), float(gram[i, j]), float(gram[j, j]))
            if best is None or value < best[0]:
                best = (value, i, j, c)
    _, i, j, c = best
    sol = torch.zeros(k, dtype=torch.float64)
    sol[i], sol[j] = c, 1.0 - c
    if k < 3:
        return sol
    for _ in range(max_iter):
        new_point = _next_point(sol, -(gram @ sol))
        c, _ = _pair_min_norm(
            float(sol @ gram @ sol),
            float(sol @ gram @ new_point),
            float(new_point @ gram @ new_point),
        )
        new_sol = c * sol + (1 - c) * new_point
        if float((new_sol - sol).abs().sum()) < tol:
            return sol
        sol = new_sol
    raise RuntimeError(f'the Frank-Wolfe min-norm solver did not converge in {max_iter} steps')
