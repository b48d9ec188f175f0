"""Per-objective gradients and the gradient diagnostics of the paper's
Figure 3: the conflict score <g_distill, g_task> and the dominance ratio
|g_distill| / |g_task|."""

from typing import Dict, Sequence

import torch

__all__ = ['objective_gradients', 'per_element', 'gram_matrix', 'gradient_diagnostics']


def objective_gradients(
    objectives: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor],
    retain_graph: bool = True,
    with_reach: bool = False,
):
    """The gradient of each objective with respect to ``params``, flattened.

    Each gradient comes from one ``backward()`` pass into ``.grad`` (read,
    then cleared), not from ``torch.autograd.grad``: activation checkpointing
    in its reentrant form (``torch.utils.checkpoint`` with
    ``use_reentrant=True``, as mmpretrain's and mmdet's ``with_cp`` call it)
    supports only the former. ``params``' own ``.grad`` (e.g. micro-batches
    accumulated so far) is left as it was. Other leaves that require a
    gradient and are reached by the objectives receive the K gradients in
    their ``.grad``: pass every trainable leaf the objectives reach.

    Args:
        objectives (Sequence[Tensor]): K scalars on one graph.
        params (Sequence[Tensor]): the P parameters, ``requires_grad``.
        retain_graph (bool): keep the graph after the last objective.

    Returns:
        Tensor: (K, sum of numel of params); a parameter an objective does
        not reach contributes zeros to its row. With ``with_reach``, also
        (K, len(params)) bool: which parameter each objective reaches (its
        graph leads there, whatever the gradient's value).
    """
    params = list(params)
    saved = [p.grad for p in params]
    rows, reach = [], []
    try:
        for p in params:
            p.grad = None
        for i, objective in enumerate(objectives):
            objective.backward(retain_graph=retain_graph or i < len(objectives) - 1)
            reach.append([p.grad is not None for p in params])
            rows.append(
                torch.cat(
                    [
                        (torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1)
                        for p in params
                    ]
                )
            )
            for p in params:
                p.grad = None
    finally:
        for p, grad in zip(params, saved):
            p.grad = grad
    grads = torch.stack(rows)
    if with_reach:
        return grads, torch.tensor(reach, dtype=torch.bool, device=grads.device)
    return grads


def per_element(reach: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """(K, len(params)) per-parameter flags as (K, P) per-element flags, in
    the flattened order of :func:`objective_gradients`."""
    counts = torch.tensor([p.numel() for p in params], device=reach.device)
    return reach.repeat_interleave(counts, dim=1)


def gram_matrix(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """``G_ij = <g_i, g_j>`` in float64, shape (K, K), from K flat gradients
    (a sequence, or the rows of a (K, P) tensor)."""
    stacked = torch.stack([g.double() for g in grads])
    return stacked @ stacked.T


def gradient_diagnostics(gram: torch.Tensor, first: int = 0, second: int = 1) -> Dict[str, float]:
    """Conflict and dominance of two gradients from their Gram matrix.

    Returns:
        dict: ``conflict`` = <g_a, g_b> (negative: the objectives disagree),
        ``conflict_cos`` = the cosine, ``dominance`` = |g_a| / |g_b|
        (inf when g_b is zero).
    """
    gaa, gbb, gab = gram[first, first], gram[second, second], gram[first, second]
    norm_a, norm_b = gaa.clamp(min=0).sqrt(), gbb.clamp(min=0).sqrt()
    denom = norm_a * norm_b
    cos = gab / denom if denom > 0 else torch.zeros_like(gab)
    dominance = norm_a / norm_b if norm_b > 0 else torch.full_like(norm_a, float('inf'))
    return dict(conflict=float(gab), conflict_cos=float(cos), dominance=float(dominance))
