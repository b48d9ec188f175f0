"""MoKD's two rules for weighting the objectives (paper, section 3.1).

* :class:`MoKDAmortized` -- the amortized rule the paper adopts from FAMO
  (Liu et al., NeurIPS 2023), Algorithm 1: softmax-parametrized weights,
  learned from how much each ``log L_i`` dropped over a step.
* :class:`MoKDExact` -- Theorem 3.1: the min-norm combination of the
  gradients of ``log L_i`` (one backward pass per objective).
"""

import copy
from typing import Dict, Optional

import torch

from .base import Balancer, build_optimizer
from .min_norm import min_norm_weights

__all__ = ['MoKDAmortized', 'MoKDExact']

UPDATES = ('same_batch', 'next_batch')
BELOW_BOUND = 'are not above their lower bound (min_losses: no logarithm)'
BOUND_REMEDY = (
    "lower min_losses below the objectives' values, or weigh them with a rule that "
    'takes no logarithm (e.g. FixedWeights)'
)
# The paper's optimizer of the weights' logits (section 4).
LOGITS_OPTIMIZER = dict(type='AdamW', lr=0.025, weight_decay=0.01)


def _lower_bounds(min_losses, k: int) -> torch.Tensor:
    bounds = torch.as_tensor(min_losses, dtype=torch.float64)
    if bounds.dim() == 0:
        bounds = bounds.expand(k).clone()
    if bounds.shape != (k,):
        raise ValueError(f'min_losses must be a scalar or have {k} entries, got {min_losses}')
    return bounds


class MoKDAmortized(Balancer):
    """Amortized MoKD/FAMO weighting of K objectives (Algorithm 1).

    The weights are ``z = softmax(logits)`` with ``logits`` (0 at the start:
    ``pi = 1/K``, Algorithm 1 line 2). Each step:

    1. the update is the gradient of FAMO's ``c * sum_i z_i log(L_i - b_i
       + eps)`` (``c = 1 / sum_i z_i / (L_i - b_i + eps)``, detached), i.e.
       :meth:`objective_weights` ``c z_i / (L_i - b_i + eps)`` on the raw objectives;
    2. after the model step, :meth:`update` moves the logits along the softmax
       Jacobian times ``delta_i = log(L_i - b_i + eps) - log(L_i' - b_i +
       eps)`` with the logits' own optimizer, where ``L'`` are the
       objectives re-evaluated on the same batch (``update='same_batch'``,
       Algorithm 1 line 10) or those of the next batch
       (``update='next_batch'``, no extra forward pass).

    An objective not above its lower bound ``b_i`` has no logarithm: it gets
    weight 0 in that step (the others renormalised; a warning says so) and
    no part in the logits' update.

    Args:
        num_objectives (int): K >= 2.
        names (Sequence[str], optional): the objectives' names.
        update (str): ``'same_batch'`` (default) or ``'next_batch'``.
        optimizer (dict | Callable, optional): the logits' optimizer,
            ``dict(type=<torch.optim class name>, **kwargs)`` or a callable
            taking ``[w]``. Defaults to the paper's ``dict(type='AdamW',
            lr=0.025, weight_decay=0.01)``; a dict without ``type`` changes
            only what it names of that default. FAMO's public code uses
            ``dict(type='Adam', lr=0.025, weight_decay=0.01)`` (L2 coupled
            into the gradient).
        min_losses (float | Sequence[float]): lower bounds ``b`` (scalar or
            K). Defaults to 0, the paper's plain ``log L``.
        eps (float): added inside the logarithm. Defaults to 1e-8.
        warn_interval (int): see :class:`Balancer`.
    """

    def __init__(
        self,
        num_objectives: int,
        names=None,
        update: str = 'same_batch',
        optimizer=None,
        min_losses=0.0,
        eps: float = 1e-8,
        warn_interval: int = 100,
    ):
        super().__init__(num_objectives, names, warn_interval)
        if update not in UPDATES:
            raise ValueError(f'update must be one of {UPDATES}, got {update!r}')
        self.update_mode = update
        self.eps = eps
        self.min_losses = _lower_bounds(min_losses, num_objectives)
        self.logits = torch.zeros(num_objectives, requires_grad=True)
        self.optimizer = build_optimizer(optimizer, [self.logits], LOGITS_OPTIMIZER)
        self.pending: Optional[torch.Tensor] = None  # next_batch: last step's objectives
        self.pi: Optional[torch.Tensor] = None

    @property
    def needs_reevaluation(self) -> bool:
        return self.update_mode == 'same_batch'

    def _follow(self, objectives: torch.Tensor) -> None:
        """Keep the logits (and their optimizer's state) in the objectives'
        dtype and device."""
        if self.logits.dtype == objectives.dtype and self.logits.device == objectives.device:
            return
        self.logits.data = self.logits.data.to(objectives.device, objectives.dtype)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and key != 'step':
                    state[key] = value.to(objectives.device, objectives.dtype)

    def _shifted(self, objectives: torch.Tensor) -> torch.Tensor:
        return objectives - self.min_losses.to(objectives.device, objectives.dtype)

    def _objective_weights(self, objectives: torch.Tensor) -> torch.Tensor:
        self._follow(objectives)
        if self.pending is not None:
            # This batch's objectives are the last step's "after" values.
            self._learn(self.pending, objectives)
            self.pending = None
        shifted = self._shifted(objectives)
        active = shifted > 0
        self._leave_out(~active, objectives, BELOW_BOUND, BOUND_REMEDY)
        z = torch.softmax(self.logits.detach(), 0) * active
        if not bool(active.any()):
            self.pi = z
            return torch.zeros_like(objectives)
        self.pi = z / z.sum()
        weights = z / torch.where(active, shifted + self.eps, torch.ones_like(shifted))
        return weights / weights.sum()

    def update(self, objectives: torch.Tensor, after: Optional[torch.Tensor] = None) -> None:
        self._check(objectives)
        if self.update_mode == 'next_batch':
            self.pending = objectives.detach().clone()
            return
        if after is None:
            raise ValueError(
                "MoKDAmortized(update='same_batch') needs the objectives "
                're-evaluated after the step (update(objectives, after)); '
                "or use update='next_batch'"
            )
        self._check(after)
        self._follow(objectives)
        self._learn(objectives, after)

    def _learn(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """One step of the logits; returns delta (K,), 0 where an objective
        is not above its bound before or after. No step at all (not even
        the optimizer's momentum or weight decay) when no objective is
        measured."""
        before, after = before.detach(), after.detach().to(before)
        sb, sa = self._shifted(before), self._shifted(after)
        valid = (sb > 0) & (sa > 0)
        one = torch.ones_like(sb)
        delta = torch.log(torch.where(valid, sb, one) + self.eps) - torch.log(
            torch.where(valid, sa, one) + self.eps
        )
        delta = torch.where(valid, delta, torch.zeros_like(delta))
        if not bool(valid.any()):
            return delta  # nothing measured: the logits and their optimizer stay
        self.optimizer.zero_grad(set_to_none=True)
        with torch.enable_grad():
            z = torch.softmax(self.logits, 0)
            (grad,) = torch.autograd.grad(z, self.logits, grad_outputs=delta)
        self.logits.grad = grad
        self.optimizer.step()
        return delta

    def log_vars(self) -> Dict[str, float]:
        """``pi_<name>``: the weights on ``log L_i`` applied in the last
        step (``softmax(logits)`` with left-out objectives at 0); and
        ``weight_<name>``: those on the raw gradients."""
        logs = super().log_vars()
        if self.pi is not None:
            logs.update({f'pi_{n}': float(p) for n, p in zip(self.names, self.pi)})
        return logs

    def state_dict(self) -> Dict:
        return dict(
            logits=self.logits.detach().clone(),
            optimizer=self.optimizer.state_dict(),
            pending=self.pending,
        )

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        logits = state['logits']
        if logits.shape != self.logits.shape:
            raise ValueError(
                f'the balancer state has {logits.numel()} objectives, this '
                f'run has {self.num_objectives}'
            )
        self.logits.data = logits.detach().clone().to(self.logits.device)
        # A copy: the optimizer would otherwise share state tensors with ``state``.
        self.optimizer.load_state_dict(copy.deepcopy(state['optimizer']))
        self.pending = state['pending']


class MoKDExact(Balancer):
    """Theorem 3.1: the update ``sum_i pi_i g_i`` with ``g_i = grad log(L_i
    - b_i)`` and pi the min-norm point of the simplex
    (:func:`~mokd_mm.core.balancers.min_norm_weights`; the closed form of
    eq. 11-12 for two objectives, kept on the simplex).

    The gradients of ``log L_i`` are those of ``L_i`` divided by ``L_i -
    b_i``; an objective not above its bound is left out (weight 0, with a
    warning). The Gram matrix is accumulated in float64.

    ``scale`` sets the length of the step along that direction:

    * ``'log'`` (default): the paper's step, ``sum_i pi_i grad log L_i``, in
      log-loss units: with objectives of 0.01 to 0.1 it is 10 to 100 times a
      plain gradient step, so the model's learning rate must be tuned for it.
    * ``'famo'``: FAMO's log-MGDA (Cranial-XIX/FAMO, ``LOG_MGDA``) divides it
      by ``c = sum_i pi_i / (L_i - b_i)``: the weights on the raw gradients,
      ``pi_i / ((L_i - b_i) c)``, then sum to 1 and the step stays on the
      scale of the losses' own gradients (recipes tuned for a plain sum).

    Args:
        num_objectives (int): K >= 2 (at most 10: the K > 2 solve tries
            every face of the simplex).
        names (Sequence[str], optional): the objectives' names.
        min_losses (float | Sequence[float]): lower bounds ``b``. Defaults to 0.
        scale (str): ``'log'`` (default) or ``'famo'``.
        warn_interval, parameters: see :class:`Balancer`.
    """

    needs_gradients = True
    SCALES = ('log', 'famo')

    def __init__(
        self,
        num_objectives: int,
        names=None,
        min_losses=0.0,
        scale: str = 'log',
        warn_interval: int = 100,
        parameters: str = 'shared',
    ):
        super().__init__(num_objectives, names, warn_interval, parameters)
        if scale not in self.SCALES:
            raise ValueError(f'scale must be one of {self.SCALES}, got {scale!r}')
        self.min_losses = _lower_bounds(min_losses, num_objectives)
        self.scale = scale
        self.pi: Optional[torch.Tensor] = None

    def _combine_gradients(self, grads: torch.Tensor, objectives: torch.Tensor):
        shifted = objectives - self.min_losses.to(objectives.device, objectives.dtype)
        active = shifted > 0
        self._leave_out(~active, objectives, BELOW_BOUND, BOUND_REMEDY)
        pi = torch.zeros(self.num_objectives, dtype=objectives.dtype, device=objectives.device)
        if bool(active.any()):
            idx = torch.nonzero(active).flatten()
            log_grads = grads[idx] / shifted[idx, None].to(grads.dtype)
            stacked = log_grads.double()
            pi[idx] = min_norm_weights(stacked @ stacked.T).to(pi)
        self.pi = pi
        weights = torch.where(
            active,
            pi / torch.where(active, shifted, torch.ones_like(shifted)),
            torch.zeros_like(pi),
        )
        if self.scale == 'famo' and bool(weights.sum() > 0):
            weights = weights / weights.sum()  # c = sum_i pi_i / (L_i - b_i)
        return weights.to(grads.dtype) @ grads, weights

    def log_vars(self) -> Dict[str, float]:
        """``pi_<name>``: the min-norm weights on ``grad log L_i``;
        ``weight_<name>``: the same update's weights on the raw gradients."""
        logs = super().log_vars()
        if self.pi is not None:
            logs.update({f'pi_{n}': float(p) for n, p in zip(self.names, self.pi)})
        return logs
