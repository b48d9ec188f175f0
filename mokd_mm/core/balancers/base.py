"""The interface every loss balancer implements.

A balancer turns the K objectives of one training step into one update of
the model. It declares what it needs from the step:

* only the objectives' values (:attr:`Balancer.needs_gradients` False): it
  returns weights ``w`` (K,) and the update is the gradient of
  ``sum_i w_i L_i``, one ordinary backward pass;
* the per-objective gradients (``needs_gradients`` True): it receives the
  gradients as a (K, P) matrix and returns the update direction (P,);
* after the optimizer step, :meth:`Balancer.update` gives it the objectives
  of the step and, when :attr:`Balancer.needs_reevaluation` is True, the same
  batch's objectives under the updated parameters.

:meth:`Balancer.backward` runs one balanced backward pass in plain PyTorch;
``mokd_mm.engine.MoKDOptimWrapper`` calls the same method with hooks for
mixed precision and distributed training.
"""

import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..gradients import objective_gradients

__all__ = [
    'Balancer',
    'SeededBalancer',
    'NonFiniteObjectiveError',
    'build_optimizer',
    'scatter_to_grads',
]


class NonFiniteObjectiveError(FloatingPointError):
    """An objective is NaN or infinite: no weight can be derived from it."""


def build_optimizer(cfg, params: List[torch.Tensor]) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer from ``dict(type='Adam', lr=..., ...)``
    (``type`` names a class of :mod:`torch.optim`), or from a callable that
    takes the parameter list."""
    if callable(cfg):
        return cfg(params)
    cfg = dict(cfg)
    name = cfg.pop('type', None)
    optim_cls = getattr(torch.optim, str(name), None)
    if not (isinstance(optim_cls, type) and issubclass(optim_cls, torch.optim.Optimizer)):
        raise ValueError(f'optimizer type {name!r} is not a torch.optim optimizer')
    return optim_cls(params, **cfg)


def scatter_to_grads(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Add the flat vector ``flat`` (P,) to the ``.grad`` of ``params``, in
    their order and each in its own dtype."""
    offset = 0
    for p in params:
        n = p.numel()
        g = flat[offset : offset + n].view_as(p).to(p.dtype)
        p.grad = g.clone() if p.grad is None else p.grad + g
        offset += n
    if offset != flat.numel():
        raise ValueError(f'the update has {flat.numel()} entries, the parameters {offset}')


class Balancer:
    """Base class of the balancing rules.

    Subclasses implement :meth:`_loss_weights` (rules that need only the
    objectives) or :meth:`_combine_gradients` (``needs_gradients = True``),
    and optionally :meth:`update` and the state methods.

    Computations happen in the objectives' dtype; no rule casts them.

    Args:
        num_objectives (int): K >= 2.
        names (Sequence[str], optional): the objectives' names, used in
            messages and in :meth:`log_vars`. Defaults to ``'0'``, ``'1'``...
        warn_interval (int): a rule that leaves out an objective (e.g. one
            not above its lower bound) warns at the first such step and then
            every ``warn_interval`` such steps. Defaults to 100.
    """

    needs_gradients = False

    def __init__(
        self, num_objectives: int, names: Optional[Sequence[str]] = None, warn_interval: int = 100
    ):
        if num_objectives < 2:
            raise ValueError(f'a balancer needs >= 2 objectives, got {num_objectives}')
        names = [str(i) for i in range(num_objectives)] if names is None else list(names)
        if len(names) != num_objectives:
            raise ValueError(f'{num_objectives} objectives but {len(names)} names {names}')
        self.num_objectives = num_objectives
        self.names = names
        self.warn_interval = warn_interval
        self.applied: Optional[torch.Tensor] = None
        self._left_out_steps = 0

    # ------------------------------------------------------------- contract
    @property
    def needs_reevaluation(self) -> bool:
        """Whether :meth:`update` needs the same batch's objectives after
        the optimizer step."""
        return False

    def loss_weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Weights ``w`` (K,) such that the update is the gradient of
        ``sum_i w_i L_i``.

        Args:
            losses (Tensor): the objectives' values, shape (K,), detached.
        """
        if self.needs_gradients:
            raise TypeError(
                f'{type(self).__name__} needs the per-objective gradients: call combine_gradients'
            )
        self._check(losses)
        weights = self._loss_weights(losses)
        self.applied = weights.detach()
        return weights

    def combine_gradients(self, grads: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """The update direction from the per-objective gradients.

        Args:
            grads (Tensor): row i is the gradient of objective i, shape (K, P).
            losses (Tensor): the objectives' values, shape (K,), detached.

        Returns:
            Tensor: the update, shape (P,) (to be descended).
        """
        if not self.needs_gradients:
            raise TypeError(f'{type(self).__name__} weighs the losses: call loss_weights')
        self._check(losses)
        if grads.dim() != 2 or grads.shape[0] != self.num_objectives:
            raise ValueError(
                f'grads must have shape ({self.num_objectives}, P), got {tuple(grads.shape)}'
            )
        direction, weights = self._combine_gradients(grads, losses)
        self.applied = None if weights is None else weights.detach()
        return direction

    def update(self, losses: torch.Tensor, after: Optional[torch.Tensor] = None) -> None:
        """Called once per optimizer step, after it.

        Args:
            losses (Tensor): the objectives the step was computed from, (K,).
            after (Tensor, optional): the same batch's objectives under the
                updated parameters, (K,); given when
                :attr:`needs_reevaluation`.
        """

    def log_vars(self) -> Dict[str, float]:
        """Scalars to log after a step: ``weight_<name>``, the weight of
        each objective's raw gradient in the last update (when the update
        is such a combination)."""
        if self.applied is None:
            return {}
        return {f'weight_{n}': float(w) for n, w in zip(self.names, self.applied)}

    def state_dict(self) -> Dict:
        """What a resumed run needs (tensors and plain Python values only)."""
        return {}

    def load_state_dict(self, state: Dict) -> None:
        unknown = set(state) - set(self.state_dict())
        if unknown:
            raise KeyError(f'{type(self).__name__} state has unknown entries {sorted(unknown)}')

    def _loss_weights(self, losses: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _combine_gradients(self, grads: torch.Tensor, losses: torch.Tensor):
        """Returns ``(direction (P,), weights (K,) or None)``."""
        raise NotImplementedError

    # ---------------------------------------------------------- the backward
    def backward(
        self,
        losses: torch.Tensor,
        params: Optional[Sequence[torch.Tensor]] = None,
        *,
        reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        scale: Optional[float] = None,
    ) -> torch.Tensor:
        """One balanced backward pass: the update is added to ``.grad``.

        Args:
            losses (Tensor): the K objectives, shape (K,), attached to the graph.
            params (Sequence[Tensor], optional): the parameters to update;
                needed when :attr:`needs_gradients` (rules that need only the
                objectives reach every parameter through ``backward()``).
            reduce (Callable, optional): averages a tensor over processes;
                applied to the objectives' values before any weight is set and
                to the per-objective gradients (once). Identity by default.
            scale (float, optional): a loss scale (mixed precision): the
                backward pass runs on scaled losses and ``.grad`` receives the
                scaled update; the rule sees unscaled gradients.

        Returns:
            Tensor: the objectives' values the weights were set from, (K,).
        """
        values = losses.detach()
        if reduce is not None:
            values = reduce(values)
        if not self.needs_gradients:
            weights = self.loss_weights(values)
            combined = (weights.to(losses.dtype) * losses).sum()
            (combined if scale is None else combined * scale).backward()
            return values
        if params is None:
            raise ValueError(
                f'{type(self).__name__} needs the parameters to take per-objective gradients'
            )
        params = list(params)
        scaled = losses if scale is None else losses * scale
        grads = torch.stack(objective_gradients(list(scaled), params, retain_graph=False))
        if reduce is not None:
            grads = reduce(grads)
        if scale is not None:
            grads = grads / scale
        direction = self.combine_gradients(grads, values)
        scatter_to_grads(params, direction if scale is None else direction * scale)
        return values

    # --------------------------------------------------------------- helpers
    def _check(self, losses: torch.Tensor) -> None:
        if losses.shape != (self.num_objectives,):
            raise ValueError(
                f'expected {self.num_objectives} objectives, got shape {tuple(losses.shape)}'
            )
        bad = ~torch.isfinite(losses)
        if bool(bad.any()):
            which = ', '.join(
                f'{self.names[i]}={losses[i].item()}' for i in torch.nonzero(bad).flatten().tolist()
            )
            raise NonFiniteObjectiveError(
                f'non-finite objective(s): {which}. Training stops here instead of '
                'continuing with NaN weights; lower the learning rate, enable gradient '
                'clipping or check the inputs of these losses.'
            )

    def _warn_left_out(self, left_out: torch.Tensor, why: str) -> None:
        """Warn when objectives are left out of a step: at the first such
        step, then every :attr:`warn_interval` such steps."""
        if not bool(left_out.any()):
            return
        if self._left_out_steps % max(1, self.warn_interval) == 0:
            names = [self.names[i] for i in torch.nonzero(left_out).flatten().tolist()]
            warnings.warn(
                f'{type(self).__name__}: objective(s) {names} {why}, so they get weight 0 '
                f'this step (step {self._left_out_steps + 1} with objectives left out; '
                f'repeated every {self.warn_interval} such steps)',
                RuntimeWarning,
            )
        self._left_out_steps += 1


class SeededBalancer(Balancer):
    """A balancer that draws random numbers from a generator of its own, so
    that every process of a distributed run draws the same numbers and a
    resumed run continues the sequence.

    Args:
        seed (int, optional): of the generator; defaults to
            ``torch.initial_seed()`` (the run's seed).
    """

    def __init__(
        self, num_objectives: int, names=None, seed: Optional[int] = None, warn_interval: int = 100
    ):
        super().__init__(num_objectives, names, warn_interval)
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.initial_seed() if seed is None else seed)

    def state_dict(self) -> Dict:
        return dict(generator=self.generator.get_state())

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state['generator'])
