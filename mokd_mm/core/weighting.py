"""Learned weights on the simplex for K >= 2 objectives (MoKD, section 3.1).

Two rules, both plain PyTorch:

* :func:`min_norm_weights` -- the exact rule. Given the Gram matrix of the
  per-objective gradients of ``log L_i``, it returns the point of the simplex
  whose combination of gradients has minimum norm (eq. 9). For two objectives
  this is the closed form of Theorem 3.1, projected onto the simplex.
* :class:`AmortizedWeighting` -- the amortized rule the paper adopts from
  FAMO (Liu et al., 2023): softmax-parametrized weights updated from the
  observed decrease of each ``log L_i`` after a step, at the cost of one
  forward pass instead of K backward passes.
"""
import copy
from typing import Callable, Dict, Optional

import torch

__all__ = ['min_norm_weights', 'AmortizedWeighting', 'NonFiniteObjectiveError']

MAX_EXACT_OBJECTIVES = 10


class NonFiniteObjectiveError(FloatingPointError):
    """An objective is NaN or infinite: its logarithm, and hence any weight
    derived from it, is undefined."""


def check_finite(losses: torch.Tensor, names=None) -> None:
    """Raise :class:`NonFiniteObjectiveError` naming every non-finite entry.

    Args:
        losses (Tensor): shape (K,).
        names (Sequence[str], optional): K names used in the message.
    """
    bad = ~torch.isfinite(losses)
    if bool(bad.any()):
        names = names or [str(i) for i in range(losses.numel())]
        which = ', '.join(f'{names[i]}={losses[i].item()}'
                          for i in torch.nonzero(bad).flatten().tolist())
        raise NonFiniteObjectiveError(
            f'non-finite objective(s): {which}. Training stops here instead '
            'of continuing with NaN weights; lower the learning rate, enable '
            'gradient clipping or check the inputs of these losses.')


def _two_objective_weights(gram: torch.Tensor) -> torch.Tensor:
    """Theorem 3.1: pi_1 = (g22 - g12) / (g11 + g22 - 2 g12), clipped to
    [0, 1] so that the result stays on the simplex."""
    g11, g12, g22 = gram[0, 0], gram[0, 1], gram[1, 1]
    denom = g11 + g22 - 2 * g12  # = |g1 - g2|^2 >= 0
    scale = torch.clamp(g11 + g22, min=torch.finfo(gram.dtype).tiny)
    if denom <= 1e-12 * scale:
        # g1 == g2: every point of the simplex gives the same update.
        pi1 = torch.tensor(0.5, dtype=gram.dtype, device=gram.device)
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
        raise ValueError(f'exact weights support up to {MAX_EXACT_OBJECTIVES} '
                         f'objectives, got {k}')
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
        gram (Tensor): the Gram matrix ``G = J^T J`` of the K per-objective
            gradients, shape (K, K), symmetric positive semi-definite.

    Returns:
        Tensor: pi, shape (K,), non-negative and summing to 1.
    """
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f'gram must be a square matrix, got {tuple(gram.shape)}')
    gram = gram.detach().double().cpu()  # (K, K): tiny, no GPU round trips
    k = gram.shape[0]
    active = torch.diagonal(gram) > 0
    if not bool(active.any()):
        return torch.full((k, ), 1.0 / k, dtype=torch.float64)
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


class AmortizedWeighting:
    """Amortized MoKD/FAMO weighting of K objectives.

    The weights are ``z = softmax(w)`` with logits ``w`` (initialised to 0).
    Each step:

    1. :meth:`combine` turns the losses ``L`` (shape (K,)) into the scalar to
       back-propagate, ``sum_i w_i L_i`` with the detached weights
       ``w_i = c z_i / (L_i - b_i + eps)``, ``c`` normalising ``w`` to sum to
       one. This has the gradient of FAMO's normalised log objective
       ``c * sum_i z_i log(L_i - b_i + eps)``.
    2. After the model step, :meth:`update` receives the losses before and
       after the step (same batch, or the next batch) and moves ``w`` along
       ``(d z / d w)^T delta`` with ``delta_i = log(L_i - b_i + eps) -
       log(L_i' - b_i + eps)``, so objectives that improved more lose weight.

    An objective whose value is not above its lower bound ``b_i`` has no
    logarithm; it is treated as solved for that step: weight 0 in
    :meth:`combine` (the others renormalised) and no contribution to the
    logit update. NaN or infinite losses raise
    :class:`NonFiniteObjectiveError`.

    Args:
        num_objectives (int): K >= 2.
        lr (float): learning rate of the logits' optimizer. Defaults to 0.025
            (paper, section 4).
        weight_decay (float): its weight decay. Defaults to 0.01.
        min_losses (float | Tensor): lower bounds ``b`` (scalar or (K,)).
            Defaults to 0, i.e. the paper's plain ``log L``.
        eps (float): added inside the logarithm. Defaults to 1e-8.
        optimizer (Callable, optional): builds the logits' optimizer from
            ``[w]``; defaults to ``torch.optim.AdamW(lr, weight_decay)``.
        names (Sequence[str], optional): objective names for error messages.
    """

    def __init__(self,
                 num_objectives: int,
                 lr: float = 0.025,
                 weight_decay: float = 0.01,
                 min_losses=0.0,
                 eps: float = 1e-8,
                 optimizer: Optional[Callable] = None,
                 names=None):
        if num_objectives < 2:
            raise ValueError(f'num_objectives must be >= 2, got {num_objectives}')
        self.num_objectives = num_objectives
        self.eps = eps
        self.names = list(names) if names is not None else None
        self.min_losses = torch.as_tensor(min_losses, dtype=torch.float32)
        self.logits = torch.zeros(num_objectives, requires_grad=True)
        if optimizer is None:
            self.optimizer = torch.optim.AdamW([self.logits],
                                               lr=lr,
                                               weight_decay=weight_decay)
        else:
            self.optimizer = optimizer([self.logits])

    def to(self, device) -> 'AmortizedWeighting':
        """Move the logits (in place, keeping optimizer references)."""
        self.logits.data = self.logits.data.to(device)
        self.min_losses = self.min_losses.to(device)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and key != 'step':
                    state[key] = value.to(device)
        return self

    def weights(self) -> torch.Tensor:
        """The current weights z = softmax(w), shape (K,), detached."""
        return torch.softmax(self.logits.detach(), dim=0)

    def _shifted(self, losses: torch.Tensor) -> torch.Tensor:
        return losses - self.min_losses.to(losses.device, losses.dtype)

    def effective_weights(self, losses: torch.Tensor) -> torch.Tensor:
        """The weights on the objectives' raw gradients for losses ``L``.

        They are ``c z_i / (L_i - b_i + eps)`` with ``c`` normalising them to
        sum to one: the gradient of FAMO's ``c * sum_i z_i log(L_i - b_i +
        eps)`` (``c`` detached) is exactly ``sum_i w_i grad L_i``. Objectives
        not above their bound get 0.

        Args:
            losses (Tensor): shape (K,); only values are used.

        Returns:
            Tensor: w, shape (K,), detached; all zeros if no objective is
            above its bound.
        """
        losses = losses.detach()
        self._check(losses)
        shifted = self._shifted(losses)
        active = shifted > 0
        if not bool(active.any()):
            return torch.zeros_like(shifted)
        z = self.weights().to(shifted.device, shifted.dtype) * active
        d = torch.where(active, shifted, torch.ones_like(shifted)) + self.eps
        w = z / d
        return w / w.sum()

    def combine(self,
                losses: torch.Tensor,
                reference: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The scalar to back-propagate for this step: ``sum_i w_i L_i`` with
        :meth:`effective_weights` ``w``.

        Args:
            losses (Tensor): shape (K,), attached to the graph.
            reference (Tensor, optional): shape (K,), the values the weights
                are computed from (e.g. the losses averaged over all
                processes); defaults to ``losses``.

        Returns:
            Tensor: a scalar whose gradient is a convex combination of the
            objectives' gradients.
        """
        w = self.effective_weights(losses if reference is None else reference)
        return (w.to(losses.dtype) * losses).sum()

    def update(self, losses_before: torch.Tensor,
               losses_after: torch.Tensor) -> torch.Tensor:
        """One step of the logits from the decrease of the log losses.

        Args:
            losses_before (Tensor): shape (K,), the losses the model step was
                computed from.
            losses_after (Tensor): shape (K,), the losses after the step.

        Returns:
            Tensor: delta, shape (K,), the decrease of each log loss (0 where
            an objective was not above its bound).
        """
        before = losses_before.detach().to(self.logits.device, torch.float32)
        after = losses_after.detach().to(self.logits.device, torch.float32)
        self._check(before)
        self._check(after)
        sb, sa = self._shifted(before), self._shifted(after)
        valid = (sb > 0) & (sa > 0)
        one = torch.ones_like(sb)
        delta = torch.log(torch.where(valid, sb, one) + self.eps) - torch.log(
            torch.where(valid, sa, one) + self.eps)
        delta = torch.where(valid, delta, torch.zeros_like(delta))
        self.optimizer.zero_grad(set_to_none=True)
        with torch.enable_grad():
            z = torch.softmax(self.logits, dim=0)
            (grad, ) = torch.autograd.grad(z, self.logits, grad_outputs=delta)
        self.logits.grad = grad
        self.optimizer.step()
        return delta

    def _check(self, losses: torch.Tensor) -> None:
        if losses.shape != (self.num_objectives, ):
            raise ValueError(f'expected {self.num_objectives} losses, got '
                             f'shape {tuple(losses.shape)}')
        check_finite(losses, self.names)

    def state_dict(self) -> Dict:
        """Logits and their optimizer's state."""
        return dict(
            logits=self.logits.detach().clone(),
            optimizer=self.optimizer.state_dict())

    def load_state_dict(self, state: Dict) -> None:
        logits = state['logits']
        if logits.shape != self.logits.shape:
            raise ValueError(
                f'weighting state has {logits.numel()} objectives, this run '
                f'has {self.num_objectives}')
        with torch.no_grad():
            self.logits.copy_(logits)
        # A copy: the optimizer would otherwise share state tensors with the
        # source of ``state``.
        self.optimizer.load_state_dict(copy.deepcopy(state['optimizer']))
