"""Per-objective gradients and the gradient diagnostics of the paper's
Figure 3: the conflict score <g_distill, g_task> and the dominance ratio
|g_distill| / |g_task|."""

from typing import Dict, List, Sequence

import torch

__all__ = ['objective_gradients', 'gram_matrix', 'gradient_diagnostics']


def objective_gradients(
    losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor], retain_graph: bool = True
) -> List[torch.Tensor]:
    """Flattened gradient of each loss with respect to ``params``.

    Parameters a loss does not reach contribute zeros.

    Args:
        losses (Sequence[Tensor]): K scalar losses on one graph.
        params (Sequence[Tensor]): P parameters with ``requires_grad``.
        retain_graph (bool): keep the graph after the last loss.

    Returns:
        list[Tensor]: K tensors of shape (sum of numel of params,).
    """
    flat = []
    for i, loss in enumerate(losses):
        keep = retain_graph or i < len(losses) - 1
        grads = torch.autograd.grad(loss, params, retain_graph=keep, allow_unused=True)
        flat.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params)
                ]
            )
        )
    return flat


def gram_matrix(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """``G_ij = <g_i, g_j>`` in float64, shape (K, K)."""
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
