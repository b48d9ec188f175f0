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

import math
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch

from ..gradients import objective_gradients, per_element

__all__ = [
    'Balancer',
    'SeededBalancer',
    'NonFiniteObjectiveError',
    'NoObjectiveError',
    'build_optimizer',
    'scatter_to_grads',
]


NON_FINITE_REMEDY = (
    'lower the learning rate, enable gradient clipping or check the inputs of these losses'
)


class NonFiniteObjectiveError(FloatingPointError):
    """An objective is NaN or infinite: no weight can be derived from it.

    Args:
        objectives (dict[str, float]): the non-finite objectives by name.
        losses (dict[str, float], optional): the non-finite losses they were
            summed from, by name, when the caller knows them.
        when (str): what had happened (e.g. whether the step was taken).
    """

    def __init__(self, objectives: Dict[str, float], losses=None, when: str = ''):
        self.objectives = dict(objectives)
        self.losses = dict(losses or {})
        which = ', '.join(f'{k}={v}' for k, v in self.objectives.items())
        culprits = ', '.join(f'{k}={v}' for k, v in self.losses.items())
        super().__init__(
            f'non-finite objective(s) {which}'
            + (f' (from the losses {culprits})' if culprits else '')
            + f' {when or "before the step; the step is not taken"}. Training stops '
            f'instead of continuing with NaN; {NON_FINITE_REMEDY}.'
        )


class NoObjectiveError(RuntimeError):
    """Every objective has been left out (e.g. none is above its lower bound)
    for ``warn_interval`` steps in a row: nothing is being optimised."""


def build_optimizer(
    cfg, params: List[torch.Tensor], default: Optional[Dict] = None
) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer from ``dict(type='Adam', lr=..., ...)``
    (``type`` names a class of :mod:`torch.optim`), or from a callable that
    takes the parameter list.

    A dict without ``type`` is merged into ``default`` (so ``dict(lr=0.01)``,
    e.g. from ``--cfg-options ...balancer.optimizer.lr=0.01``, changes only
    the learning rate of the default optimizer); ``None`` is ``default``.
    """
    if callable(cfg):
        return cfg(params)
    if cfg is None or 'type' not in cfg:
        cfg = {**(default or {}), **(cfg or {})}
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

    Subclasses implement :meth:`_objective_weights` (rules that need only the
    objectives) or :meth:`_combine_gradients` (``needs_gradients = True``),
    and optionally :meth:`update` and the state methods.

    Computations happen in the objectives' dtype; no rule casts them.

    Args:
        num_objectives (int): K >= 2.
        names (Sequence[str], optional): the objectives' names, used in
            messages and in :meth:`log_vars`. Defaults to ``'0'``, ``'1'``...
        parameters (str): for rules that need the per-objective gradients:
            ``'shared'`` (default) applies the rule to the parameters every
            objective reaches and gives the others their own gradients
            (:meth:`combine_gradients`); ``'all'`` applies it to every
            parameter.
        warn_interval (int): a rule that leaves out objectives (e.g. ones
            not above their lower bound) reports them at the first such step
            and every ``warn_interval`` steps while it lasts; when it has left
            out every objective for ``warn_interval`` steps in a row it raises
            :class:`NoObjectiveError`. Defaults to 100.

    Attributes:
        report (Callable[[str], None]): where those reports go;
            ``warnings.warn`` by default (``MoKDOptimWrapper`` sends them to
            the run's log).
        steps (int): the steps weighed so far.
    """

    needs_gradients = False

    needs_parameters = False
    PARAMETERS = ('shared', 'all')

    def __init__(
        self,
        num_objectives: int,
        names: Optional[Sequence[str]] = None,
        warn_interval: int = 100,
        parameters: str = 'shared',
    ):
        if num_objectives < 2:
            raise ValueError(f'a balancer needs >= 2 objectives, got {num_objectives}')
        names = [str(i) for i in range(num_objectives)] if names is None else list(names)
        if len(names) != num_objectives:
            raise ValueError(f'{num_objectives} objectives but {len(names)} names {names}')
        if parameters not in self.PARAMETERS:
            raise ValueError(f'parameters must be one of {self.PARAMETERS}, got {parameters!r}')
        self.num_objectives = num_objectives
        self.names = names
        self.parameters = parameters
        self.warn_interval = max(1, int(warn_interval))
        self.applied: Optional[torch.Tensor] = None
        self.report: Callable[[str], None] = _warn
        self.steps = 0
        self._left_out_run = 0  # consecutive steps with an objective left out
        self._all_out_run = 0  # consecutive steps with every objective left out

    # ------------------------------------------------------------- contract
    @property
    def needs_reevaluation(self) -> bool:
        """Whether :meth:`update` needs the same batch's objectives after
        the optimizer step."""
        return False

    def objective_weights(self, objectives: torch.Tensor) -> torch.Tensor:
        """Weights ``w`` (K,) such that the update is the gradient of
        ``sum_i w_i L_i``.

        Args:
            objectives (Tensor): the objectives' values, shape (K,), detached.
        """
        if self.needs_gradients:
            raise TypeError(
                f'{type(self).__name__} needs the per-objective gradients: call combine_gradients'
            )
        self._check(objectives)
        self.steps += 1
        weights = self._objective_weights(objectives)
        self.applied = weights.detach()
        return weights

    def combine_gradients(
        self,
        grads: torch.Tensor,
        objectives: torch.Tensor,
        reached: Optional[torch.Tensor] = None,
        params: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """The update direction from the per-objective gradients.

        With ``parameters='shared'`` (the default) and ``reached`` given, the
        rule acts on the coordinates every objective reaches (the parameters
        all objectives share, as the rules' reference implementations apply
        them); a coordinate that only some objectives reach (a connector
        reached by the distillation objective alone, a task head) takes
        their gradients unchanged (summed). ``parameters='all'`` applies the
        rule to every coordinate, zero rows included.

        Args:
            grads (Tensor): row i is the gradient of objective i, shape (K, P).
            objectives (Tensor): the objectives' values, shape (K,), detached.
            reached (Tensor, optional): (K, P) bool, which coordinates each
                objective reaches (:func:`~mokd_mm.core.gradients.objective_gradients`).
            params (Tensor, optional): the parameters' values (P,), for rules
                with :attr:`needs_parameters`.

        Returns:
            Tensor: the update, shape (P,) (to be descended).
        """
        if not self.needs_gradients:
            raise TypeError(f'{type(self).__name__} weighs the objectives: call objective_weights')
        self._check(objectives)
        if grads.dim() != 2 or grads.shape[0] != self.num_objectives:
            raise ValueError(
                f'grads must have shape ({self.num_objectives}, P), got {tuple(grads.shape)}'
            )
        self.steps += 1
        shared = None
        if reached is not None and self.parameters == 'shared':
            shared = reached.all(0)
            if bool(shared.all()):
                shared = None
        if shared is None:
            direction, weights = self._combine_gradients(grads, objectives)
        else:
            direction = grads.sum(0)  # own gradients where some objectives do not reach
            if bool(shared.any()):
                direction[shared], weights = self._combine_gradients(grads[:, shared], objectives)
            else:
                weights = None
        self.applied = None if weights is None else weights.detach()
        return direction

    def check_compatible(self, optimizer: torch.optim.Optimizer, accumulation: int = 1) -> None:
        """Refuse a model optimizer (or gradient accumulation) the rule
        cannot be combined with. Nothing by default."""

    def update(self, objectives: torch.Tensor, after: Optional[torch.Tensor] = None) -> None:
        """Called once per optimizer step, after it.

        Args:
            objectives (Tensor): the objectives the step was computed from, (K,).
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

    def _objective_weights(self, objectives: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _combine_gradients(self, grads: torch.Tensor, objectives: torch.Tensor):
        """Returns ``(direction (P,), weights (K,) or None)``."""
        raise NotImplementedError

    # ---------------------------------------------------------- the backward
    def backward(
        self,
        objectives: Union[torch.Tensor, Sequence[torch.Tensor]],
        params: Optional[Sequence[torch.Tensor]] = None,
        *,
        reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        scale: Optional[float] = None,
        inspect: Optional[Callable[[torch.Tensor], None]] = None,
    ) -> torch.Tensor:
        """One balanced backward pass: the update is added to ``.grad``.

        Rules that need only the objectives back-propagate ``sum_i w_i L_i``
        once; rules that need the per-objective gradients take them with one
        backward pass each (:func:`~mokd_mm.core.gradients.objective_gradients`)
        and write their combination. ``inspect`` asks for the gradients
        whatever the rule (a weighting rule then writes ``sum_i w_i g_i``,
        the same update).

        Args:
            objectives (Sequence[Tensor] | Tensor): the K objectives, K scalars
                attached to the graph, or stacked, shape (K,). Give them as
                separate scalars for ``parameters='shared'``: the elements of a
                stacked tensor share one graph, so every objective seems to
                reach every parameter.
            params (Sequence[Tensor], optional): the parameters to update;
                needed when the per-objective gradients are taken (rules
                that need only the objectives reach every parameter through
                ``backward()``).
            reduce (Callable, optional): averages a tensor over processes;
                applied to the objectives' values before any weight is set and
                to the per-objective gradients (once). Identity by default.
            scale (float, optional): a loss scale (mixed precision): the
                backward pass runs on scaled objectives and ``.grad`` receives the
                scaled update; the rule sees unscaled gradients.
            inspect (Callable, optional): called with the per-objective
                gradients (K, P), reduced and unscaled, before the rule
                combines them (e.g. for the gradient diagnostics).

        Returns:
            Tensor: the objectives' values the weights were set from, (K,).
        """
        objectives = list(objectives)
        values = torch.stack([o.detach().reshape(()) for o in objectives])
        if reduce is not None:
            values = reduce(values)
        if not self.needs_gradients and inspect is None:
            weights = self.objective_weights(values)
            combined = sum(w.to(o.dtype) * o for w, o in zip(weights, objectives))
            (combined if scale is None else combined * scale).backward()
            return values
        if params is None:
            raise ValueError(
                f'{type(self).__name__} needs the parameters to take per-objective gradients'
            )
        params = list(params)
        scaled = objectives if scale is None else [o * scale for o in objectives]
        grads, reach = objective_gradients(scaled, params, retain_graph=False, with_reach=True)
        if reduce is not None:
            grads = reduce(grads)
            reach = reduce(reach.to(grads.dtype)) > 0
        if scale is not None:
            grads = grads / scale
        if inspect is not None:
            inspect(grads)
        if self.needs_gradients:
            flat = None
            if self.needs_parameters:
                flat = torch.cat([p.detach().reshape(-1).to(grads.dtype) for p in params])
            direction = self.combine_gradients(
                grads, values, reached=per_element(reach, params), params=flat
            )
        else:
            direction = self.objective_weights(values).to(grads) @ grads
        scatter_to_grads(params, direction if scale is None else direction * scale)
        return values

    # --------------------------------------------------------------- helpers
    def _check(self, objectives: torch.Tensor) -> None:
        if objectives.shape != (self.num_objectives,):
            raise ValueError(
                f'expected {self.num_objectives} objectives, got shape {tuple(objectives.shape)}'
            )
        if not bool(torch.isfinite(objectives).all()):  # one device sync per step
            raise NonFiniteObjectiveError(
                {n: float(v) for n, v in zip(self.names, objectives) if not math.isfinite(float(v))}
            )

    def _leave_out(self, left_out: torch.Tensor, objectives: torch.Tensor, why: str, remedy: str):
        """Report the objectives this step leaves out (weight 0), every one
        by name, at the first such step and every :attr:`warn_interval`
        steps while it lasts; stop when every objective has been left out
        for :attr:`warn_interval` steps in a row."""
        if not bool(left_out.any()):
            self._left_out_run = self._all_out_run = 0
            return
        names = [self.names[i] for i in torch.nonzero(left_out).flatten().tolist()]
        values = ', '.join(f'{n}={float(v):.4g}' for n, v in zip(self.names, objectives))
        if self._left_out_run % self.warn_interval == 0:
            self.report(
                f'{type(self).__name__}, step {self.steps}: objective(s) {names} {why} '
                f'({values}), so they get weight 0 while that lasts (reported every '
                f'{self.warn_interval} steps)'
            )
        self._left_out_run += 1
        self._all_out_run = self._all_out_run + 1 if bool(left_out.all()) else 0
        if self._all_out_run >= self.warn_interval:
            raise NoObjectiveError(
                f'{type(self).__name__}: every objective {self.names} {why} for '
                f'{self._all_out_run} steps in a row (steps {self.steps - self._all_out_run + 1}'
                f'-{self.steps}; now {values}): no objective is measured, so the update is '
                f'zero and the balancer learns nothing. Training stops here; {remedy}'
            )


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class SeededBalancer(Balancer):
    """A balancer that draws random numbers from a generator of its own, so
    that every process of a distributed run draws the same numbers and a
    resumed run continues the sequence.

    Args:
        seed (int, optional): of the generator; defaults to
            ``torch.initial_seed()`` (the run's seed).
    """

    def __init__(
        self,
        num_objectives: int,
        names=None,
        seed: Optional[int] = None,
        warn_interval: int = 100,
        parameters: str = 'shared',
    ):
        super().__init__(num_objectives, names, warn_interval, parameters)
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.initial_seed() if seed is None else seed)

    def state_dict(self) -> Dict:
        return dict(generator=self.generator.get_state())

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state['generator'])
