"""Rules that need the per-objective gradients: they see the (K, P) matrix
``G`` of one step (row i: the gradient of objective i) and return the update
direction.

Each follows its publication; where FAMO's public collection of rules
(Cranial-XIX/FAMO, ``methods/weight_methods.py``) fixes details the paper
leaves open, the class says so. As in that collection, a rule acts on the
parameters every objective reaches; parameters only some objectives reach
(a distiller's connectors, reached by the distillation objective alone)
take their own gradients (``parameters='shared'``, found from the
gradients; ``parameters='all'`` for the rule on every parameter).
"""

import torch

from .base import Balancer, SeededBalancer
from .min_norm import frank_wolfe_min_norm_weights, min_norm_weights

__all__ = ['MGDA', 'PCGrad', 'CAGrad', 'GradDrop', 'IMTLG']

NORMALIZATIONS = ('none', 'loss', 'norm', 'loss+')
SOLVERS = dict(exact=min_norm_weights, frank_wolfe=frank_wolfe_min_norm_weights)


class MGDA(Balancer):
    """Multiple-gradient descent (Sener & Koltun, NeurIPS 2018): the
    min-norm point of the convex hull of the (normalised) gradients, and
    the update ``sum_i w_i g_i`` with the raw gradients.

    Args:
        normalization (str): how each gradient is divided before the solve:
            ``'none'`` (default, as FAMO's and LibMTL's ports), ``'loss'``
            (by ``L_i``), ``'norm'`` (by ``|g_i|``) or ``'loss+'`` (by
            ``L_i |g_i|``), the options of the authors' code.
        solver (str): ``'exact'`` (default): the min-norm point itself
            (:func:`~mokd_mm.core.balancers.min_norm.min_norm_weights`, every
            face of the simplex for K > 2); ``'frank_wolfe'``: the authors'
            iterative solver as their code runs it (until a step is small),
            which stops near, not at, that point (up to 4% above its norm on
            small K = 3, 4 problems).

    The weights sum to 1 as in the authors' code (FAMO's port multiplies
    them by K).
    """

    needs_gradients = True

    def __init__(
        self,
        num_objectives: int,
        names=None,
        normalization: str = 'none',
        solver: str = 'exact',
        warn_interval: int = 100,
        parameters: str = 'shared',
    ):
        super().__init__(num_objectives, names, warn_interval, parameters)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}'
            )
        if solver not in SOLVERS:
            raise ValueError(f'solver must be one of {list(SOLVERS)}, got {solver!r}')
        self.normalization = normalization
        self.solver = solver

    def _combine_gradients(self, grads, objectives):
        norms = torch.linalg.vector_norm(grads, dim=1)
        divisor = {
            'none': torch.ones_like(norms),
            'loss': objectives.to(norms),
            'norm': norms,
            'loss+': objectives.to(norms) * norms,
        }[self.normalization]
        scaled = (grads / divisor[:, None]).double()
        weights = SOLVERS[self.solver](scaled @ scaled.T).to(grads)
        return weights @ grads, weights


class PCGrad(SeededBalancer):
    """Projecting conflicting gradients (Yu et al., NeurIPS 2020): for each
    objective i, visit the objectives in a random order and, whenever the
    running ``g_i`` conflicts with ``g_j`` (``<g_i, g_j> < 0``), remove its
    component along ``g_j``; the update is the sum of the projected
    gradients. The projected update is still a combination of the raw
    gradients, whose weights are logged.

    Args:
        seed (int, optional): of the rule's own generator (the visiting
            orders); defaults to ``torch.initial_seed()``.
    """

    needs_gradients = True

    def _combine_gradients(self, grads, objectives):
        k = self.num_objectives
        gram = grads @ grads.T
        # Row i: the coefficients of the projected g_i over the raw gradients.
        coeffs = torch.eye(k, dtype=grads.dtype, device=grads.device)
        for i in range(k):
            for j in torch.randperm(k, generator=self.generator).tolist():
                dot = coeffs[i] @ gram[:, j]
                if dot < 0 and gram[j, j] > 0:
                    coeffs[i, j] -= dot / gram[j, j]
        weights = coeffs.sum(0)
        return weights @ grads, weights


class CAGrad(Balancer):
    """Conflict-averse gradient descent (Liu et al., NeurIPS 2021): the
    update maximises the worst objective's improvement within a ball of
    radius ``c |g_0|`` around the mean gradient ``g_0``. Its dual over the
    simplex, ``min_w <g_w, g_0> + c |g_0| |g_w|``, is solved with SciPy's
    SLSQP from uniform weights, as the authors do; the update is
    ``(g_0 + c |g_0| / |g_w| g_w) / (1 + c^2)``, times K (the scale of the
    summed objectives, as in their code).

    Args:
        c (float): the radius factor. Defaults to 0.4 (FAMO's default).
        rescale (int): 0: no rescaling, 1: divide by ``1 + c^2`` (default),
            2: divide by ``1 + c``.
    """

    needs_gradients = True

    def __init__(
        self,
        num_objectives: int,
        names=None,
        c: float = 0.4,
        rescale: int = 1,
        warn_interval: int = 100,
        parameters: str = 'shared',
    ):
        super().__init__(num_objectives, names, warn_interval, parameters)
        if c < 0 or rescale not in (0, 1, 2):
            raise ValueError(f'CAGrad needs c >= 0 and rescale in (0, 1, 2), got {c}, {rescale}')
        self.c = c
        self.rescale = rescale

    def _combine_gradients(self, grads, objectives):
        import numpy as np
        from scipy.optimize import minimize

        k = self.num_objectives
        gram = (grads @ grads.T).cpu().double().numpy()
        g0_norm = float(np.sqrt(gram.mean() + 1e-8))
        radius = self.c * g0_norm + 1e-8
        start = np.full(k, 1.0 / k)

        def dual(w):
            return float(w @ gram @ start + radius * np.sqrt(w @ gram @ w + 1e-8))

        result = minimize(
            dual,
            start,
            bounds=[(0, 1)] * k,
            constraints={'type': 'eq', 'fun': lambda w: 1 - w.sum()},
        )
        w = torch.as_tensor(result.x, dtype=grads.dtype, device=grads.device)
        g_w_norm = torch.linalg.vector_norm(w @ grads)
        lam = radius / (g_w_norm + 1e-8)
        divisor = {0: 1.0, 1: 1 + self.c**2, 2: 1 + self.c}[self.rescale]
        weights = k * (1.0 / k + lam * w) / divisor
        return weights @ grads, weights


class GradDrop(SeededBalancer):
    """Gradient sign dropout (Chen et al., NeurIPS 2020), on the parameters'
    gradients as FAMO's port applies it: per coordinate, the positive-sign
    purity ``P = (1 + sum_i g_i / sum_i |g_i|) / 2`` and one uniform draw
    ``U`` keep the positive gradients where ``P > U`` and the negative ones
    where ``P < U``; the update is the sum of what is kept. It is no fixed
    combination of the objectives' gradients, so no weights are logged.

    Args:
        seed (int, optional): of the rule's own generator.
    """

    needs_gradients = True

    def _combine_gradients(self, grads, objectives):
        purity = 0.5 * (1 + grads.sum(0) / (grads.abs().sum(0) + 1e-8))
        draw = torch.rand(purity.shape, generator=self.generator).to(purity)
        keep = (purity > draw) & (grads > 0) | (purity < draw) & (grads < 0)
        return (grads * keep).sum(0), None


class IMTLG(Balancer):
    """Impartial multi-task learning, gradient part (Liu et al., ICLR 2021):
    weights ``alpha`` (summing to 1) such that the update ``sum_i alpha_i
    g_i`` has equal projections on every objective's unit gradient ``u_i``:
    ``alpha_{2:K} = g_1 U^T (D U^T)^{-1}`` with rows ``D_i = g_1 - g_i``,
    ``U_i = u_1 - u_i``, and ``alpha_1 = 1 - sum alpha_{2:K}``. A singular
    ``D U^T`` gets ``1e-8`` added on its diagonal (as FAMO's port does)."""

    needs_gradients = True

    def _combine_gradients(self, grads, objectives):
        units = grads / torch.linalg.vector_norm(grads, dim=1, keepdim=True)
        d = grads[0] - grads[1:]
        u = units[0] - units[1:]
        system = d @ u.T
        try:
            inverse = torch.linalg.inv(system)
        except torch.linalg.LinAlgError:
            eye = torch.eye(self.num_objectives - 1, dtype=grads.dtype, device=grads.device)
            inverse = torch.linalg.inv(system + 1e-8 * eye)
        rest = (grads[0] @ u.T) @ inverse
        weights = torch.cat([(1 - rest.sum()).reshape(1), rest])
        return weights @ grads, weights
