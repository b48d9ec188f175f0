"""MMEngine adapter of the loss balancers: an OptimWrapper whose
``update_params`` takes one scalar loss per objective."""

import logging
import math
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.visualization import Visualizer

from mokd_mm.core import gradient_diagnostics, gram_matrix, objective_gradients
from mokd_mm.core.balancers import Balancer, NonFiniteObjectiveError
from mokd_mm.registry import BALANCERS

DTYPES = {None: None, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


class NonFiniteUpdateError(FloatingPointError):
    """The update of a step is NaN or infinite; the step is not taken."""


@OPTIM_WRAPPERS.register_module()
class MoKDOptimWrapper(OptimWrapper):
    """Optimizer wrapper that balances several objectives with a balancer.

    ``update_params(objectives)`` takes a dict ``{name: scalar loss}`` with
    exactly the names of ``objectives``. The balancer (any rule of
    :mod:`mokd_mm.core.balancers`, built from ``BALANCERS``) turns them into
    the update; this wrapper adds what a training loop needs around it:

    * **distributed training**: the objectives are averaged over processes
      before any weight is set. Rules that need only the objectives
      back-propagate one weighted sum, whose gradients DDP's reducer
      averages (``model_wrapper_cfg=dict(type='MoKDDistributedDataParallel')``);
      rules that need per-objective gradients take them under DDP's
      ``no_sync()`` (see :meth:`optim_context`) and average them once.
    * **mixed precision**: ``dtype='float16'`` (autocast and dynamic loss
      scaling) or ``'bfloat16'`` (autocast). Objectives computed in half
      precision are promoted to float32 before the balancer sees them.
    * **accumulation and clipping**: ``accumulative_counts`` and
      ``clip_grad`` of :class:`~mmengine.optim.OptimWrapper`; clipping acts
      on the balanced update; a rule's :meth:`Balancer.update` sees the last
      micro-batch of each step.
    * **safety**: a non-finite objective or update stops training before the
      optimizer step, with an error naming the objective and, where the
      model can tell, the loss.
    * **logging**: ``update_params`` returns the balancer's scalars
      (``mokd/pi_<name>``, ``mokd/weight_<name>``, ...) for the model to put
      in its ``log_vars``. Every ``diagnostics_interval`` updates the
      gradient conflict ``mokd/conflict`` (inner product of the raw
      gradients of the first two objectives), ``mokd/conflict_cos`` and the
      dominance ``mokd/dominance`` (their norm ratio, the paper's Figure 3)
      are measured and written to the visualizer (``scalars.json``,
      TensorBoard) at that iteration only, with one log line.

    Args:
        optimizer (Optimizer): the model's optimizer.
        balancer (dict | Balancer): the rule. Defaults to
            ``dict(type='MoKDAmortized')`` (Algorithm 1, same-batch
            re-evaluation). ``num_objectives`` and ``names`` are filled in.
        objectives (Sequence[str]): the objectives' names, K >= 2. Defaults
            to ``('distill', 'task')``; :class:`MoKDOptimWrapperConstructor`
            takes them from the model.
        diagnostics_interval (int): 0 disables. Defaults to 50.
        dtype (str, optional): ``'float16'`` or ``'bfloat16'``.
        loss_scale (str | float): ``'dynamic'`` or a fixed scale, for float16.
        **kwargs: ``accumulative_counts`` and ``clip_grad``.
    """

    def __init__(
        self,
        optimizer,
        balancer=None,
        objectives=('distill', 'task'),
        diagnostics_interval: int = 50,
        dtype: Optional[str] = None,
        loss_scale='dynamic',
        **kwargs,
    ):
        _refuse_old_keys(kwargs)
        super().__init__(optimizer, **kwargs)
        self.objectives = list(objectives)
        if len(self.objectives) < 2 or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f'objectives must be >= 2 distinct names, got {self.objectives}')
        if isinstance(balancer, Balancer):
            self.balancer = balancer
        else:
            cfg = dict(type='MoKDAmortized') if balancer is None else dict(balancer)
            cfg.update(num_objectives=len(self.objectives), names=self.objectives)
            self.balancer = BALANCERS.build(cfg)
        if self.balancer.names != self.objectives:
            raise ValueError(
                f'the balancer weighs {self.balancer.names}, the wrapper {self.objectives}'
            )
        self.diagnostics_interval = diagnostics_interval
        # id(parameter) -> name, for error messages (set by the constructor).
        self.param_names: Dict[int, str] = {}
        self._init_amp(dtype, loss_scale)
        self._share_balancer_state()

    def _init_amp(self, dtype, loss_scale) -> None:
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {list(DTYPES)}, got {dtype!r}')
        self.cast_dtype = DTYPES[dtype]
        params = self._params()
        self.device_type = params[0].device.type if params else 'cpu'
        self.loss_scaler = None
        if self.cast_dtype is torch.float16:
            if loss_scale == 'dynamic':
                self.loss_scaler = torch.amp.GradScaler(self.device_type)
            else:
                self.loss_scaler = torch.amp.GradScaler(
                    self.device_type,
                    init_scale=float(loss_scale),
                    growth_factor=1.0,
                    backoff_factor=1.0,
                    growth_interval=2**31 - 1,
                )

    def _share_balancer_state(self) -> None:
        """Start every process from rank 0's balancer state (e.g. the seed
        of a random rule), so that all of them set the same weights."""
        if dist.get_world_size() > 1:
            state = [self.balancer.state_dict()]
            dist.broadcast_object_list(state, src=0)
            self.balancer.load_state_dict(state[0])

    @contextmanager
    def optim_context(self, model):
        """MMEngine's context (no gradient sync while accumulating), no sync
        either when the rule takes per-objective gradients (they are averaged
        once, by hand), and autocast when ``dtype`` is set."""
        no_sync = self.balancer.needs_gradients or not self.should_sync()
        with model.no_sync() if no_sync and hasattr(model, 'no_sync') else _nothing():
            if self.cast_dtype is None:
                yield
            else:
                with torch.autocast(self.device_type, dtype=self.cast_dtype):
                    yield

    # -------------------------------------------------------------- update
    def update_params(
        self,
        objectives: Dict[str, torch.Tensor],
        reevaluate: Optional[Callable[[], Dict[str, torch.Tensor]]] = None,
        step_kwargs: Optional[Dict] = None,
        zero_kwargs: Optional[Dict] = None,
        losses: Optional[Dict[str, torch.Tensor]] = None,
        explain: Optional[Callable[[], str]] = None,
    ) -> Dict[str, float]:
        """Balanced backward, and a step when accumulation says so.

        Args:
            objectives (dict[str, Tensor]): one scalar loss per objective.
            reevaluate (Callable, optional): returns the objectives of the
                same batch under the updated parameters; needed by rules with
                ``needs_reevaluation``. Called under ``torch.no_grad()``.
            step_kwargs, zero_kwargs (dict, optional): passed to the
                optimizer's ``step`` and ``zero_grad``.
            losses (dict[str, Tensor], optional): the individual losses the
                objectives were summed from, named in the error when an
                objective is not finite.
            explain (Callable, optional): names the losses whose gradients
                are not finite (a diagnosis run only when the update is).

        Returns:
            dict[str, float]: the balancer's scalars, prefixed ``mokd/``.
        """
        stacked = self._stack(objectives)
        if self.balancer.needs_reevaluation and reevaluate is None:
            raise ValueError(
                f'{type(self.balancer).__name__} needs update_params(..., '
                'reevaluate=callable) to re-evaluate the objectives after the '
                'step'
            )
        if self._diagnostics_due():
            self._diagnostics(stacked)
        # 1 / the accumulation factor mmengine divides each micro-batch by.
        scale = float(self.scale_loss(torch.ones((), dtype=torch.float64)))
        if self.loss_scaler is not None:
            # scale() also initialises the scaler's state on this device.
            scale *= float(self.loss_scaler.scale(torch.ones((), device=stacked.device)))
        try:
            # The balancer averages the objectives over processes and
            # refuses non-finite ones before it sets any weight.
            world = self.balancer.backward(
                stacked, self._params(), reduce=_global_mean, scale=None if scale == 1.0 else scale
            )
        except NonFiniteObjectiveError:
            # Every process raises here (the averages are non-finite on all);
            # name the losses that made the objectives.
            self._check_objectives(_global_mean(stacked.detach()), losses)
            raise
        self._inner_count += 1
        if self.should_update():
            stepped = self.step(explain=explain, **(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))
            if stepped:
                after = None
                if self.balancer.needs_reevaluation:
                    with torch.no_grad():
                        after = _global_mean(self._stack(reevaluate()).detach())
                    self._check_objectives(after, None, 'after the step')
                self.balancer.update(world, after)
        return {f'mokd/{k}': v for k, v in self.balancer.log_vars().items()}

    def _stack(self, objectives: Dict[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(objectives, dict):
            raise TypeError(
                'MoKDOptimWrapper.update_params takes a dict {objective: loss}, got '
                f'{type(objectives).__name__}. Under distributed training set '
                "model_wrapper_cfg=dict(type='MoKDDistributedDataParallel') so that the "
                "model's own train_step runs."
            )
        unknown = sorted(set(objectives) - set(self.objectives))
        missing = [n for n in self.objectives if n not in objectives]
        if unknown or missing:
            raise KeyError(
                f'objectives {unknown} are not configured and {missing} are '
                f'missing; MoKDOptimWrapper.objectives = {self.objectives}'
            )
        for name in self.objectives:
            loss = objectives[name]
            if not torch.is_tensor(loss) or loss.numel() != 1:
                raise ValueError(f'objective {name!r} must be a scalar tensor')
        stacked = torch.stack([objectives[n].reshape(()) for n in self.objectives])
        if stacked.dtype in (torch.float16, torch.bfloat16):
            stacked = stacked.float()
        return stacked

    def _check_objectives(self, values: torch.Tensor, losses, when: str = '') -> None:
        if bool(values.isfinite().all()):  # one device sync per step
            return
        bad = [i for i in range(len(values)) if not math.isfinite(float(values[i]))]
        which = ', '.join(f'{self.objectives[i]}={float(values[i])}' for i in bad)
        culprits = ''
        if losses:
            values = {k: float(torch.as_tensor(v).detach()) for k, v in losses.items()}
            named = [f'{k}={v}' for k, v in values.items() if not math.isfinite(v)]
            culprits = f' (from the losses {", ".join(named)})' if named else ''
        raise NonFiniteObjectiveError(
            f'non-finite objective(s) {which}{culprits}{" " + when if when else ""}. '
            'Training stops before the step instead of continuing with NaN; lower the '
            'learning rate, enable gradient clipping or check the inputs of these losses.'
        )

    # ---------------------------------------------------------------- step
    def step(self, explain: Optional[Callable[[], str]] = None, **kwargs) -> bool:
        """Apply the update in ``.grad``: unscale, check, clip, step.

        Called by :meth:`update_params` (through the step counter MMEngine's
        parameter schedulers put on this method). Returns whether the
        optimizer stepped: the loss scaler skips steps whose scaled
        gradients overflowed; any other non-finite update raises.
        """
        if self.loss_scaler is None:
            self._check_update(explain)
            if self.clip_grad_kwargs:
                self._clip_grad()
            self.optimizer.step(**kwargs)
            return True
        self.loss_scaler.unscale_(self.optimizer)
        if self.clip_grad_kwargs:
            self._clip_grad()
        scale = self.loss_scaler.get_scale()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()
        return self.loss_scaler.get_scale() >= scale

    def _check_update(self, explain) -> None:
        """Refuse a step whose update is not finite: the parameters (and
        any checkpoint written after) would be."""
        grads = [p.grad for p in self._params() if p.grad is not None]
        if not grads or bool(torch.stack([g.isfinite().all() for g in grads]).all()):
            return
        named = [
            n
            for n, p in self._named_params()
            if p.grad is not None and not bool(p.grad.isfinite().all())
        ]
        cause = ''
        if explain is not None:
            cause = f' Non-finite gradients come from: {explain()}.'
        raise NonFiniteUpdateError(
            f'the update of this step is not finite although the objectives are '
            f'(parameters {named[:5]}{" ..." if len(named) > 5 else ""}).{cause} The step '
            'is not taken, so no checkpoint holds non-finite weights.'
        )

    def backward(self, loss, **kwargs) -> None:
        raise RuntimeError('MoKDOptimWrapper back-propagates inside update_params(objectives)')

    # --------------------------------------------------------- diagnostics
    def _diagnostics_due(self) -> bool:
        n = self.diagnostics_interval
        return n > 0 and self._inner_count % n == 0

    def _diagnostics(self, losses: torch.Tensor) -> None:
        """Conflict and dominance of the raw gradients of the first two
        objectives (Figure 3), written at this iteration only."""
        scale = self.loss_scaler.get_scale() if self.loss_scaler is not None else 1.0
        grads = torch.stack(
            objective_gradients(
                [losses[0] * scale, losses[1] * scale], self._params(), retain_graph=True
            )
        )
        grads = _global_mean(grads) / scale
        stats = gradient_diagnostics(gram_matrix(list(grads)))
        stats = {f'mokd/{k}': v for k, v in stats.items() if math.isfinite(v)}
        step = self.message_hub.get_info('iter', self._inner_count - 1) + 1
        if _has_visualizer():
            Visualizer.get_current_instance().add_scalars(stats, step=step)
        print_log(
            f'Iter(train) [{step}] ' + '  '.join(f'{k}: {v:.4g}' for k, v in stats.items()),
            logger='current',
            level=logging.INFO,
        )

    # --------------------------------------------------------------- state
    def _params(self) -> List[torch.Tensor]:
        return [
            p for group in self.optimizer.param_groups for p in group['params'] if p.requires_grad
        ]

    def _named_params(self):
        return [
            (self.param_names.get(id(p), f'param[{i}]'), p) for i, p in enumerate(self._params())
        ]

    @property
    def weights(self) -> Dict[str, float]:
        """The weights on the objectives' raw gradients applied in the last
        update (empty before the first, or for rules without such weights)."""
        applied = self.balancer.applied
        return {} if applied is None else dict(zip(self.objectives, applied.tolist()))

    def state_dict(self) -> dict:
        """The optimizer's state plus ``'mokd'``: the balancer's state and
        the loss scaler's."""
        state = super().state_dict()
        state['mokd'] = dict(
            objectives=list(self.objectives),
            balancer=type(self.balancer).__name__,
            balancer_state=self.balancer.state_dict(),
            loss_scaler=self.loss_scaler.state_dict() if self.loss_scaler else None,
        )
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        mokd = state_dict.pop('mokd', None)
        super().load_state_dict(state_dict)
        if mokd is None:
            return
        rule = type(self.balancer).__name__
        if mokd['objectives'] != self.objectives or mokd['balancer'] != rule:
            raise ValueError(
                f'the checkpoint was saved with balancer {mokd["balancer"]} and objectives '
                f'{mokd["objectives"]}; this run has balancer {rule} and objectives '
                f'{self.objectives}'
            )
        self.balancer.load_state_dict(mokd['balancer_state'])
        if self.loss_scaler is not None and mokd['loss_scaler']:
            self.loss_scaler.load_state_dict(mokd['loss_scaler'])


# Keys of the wrapper before balancers, and what replaced them.
_OLD_KEYS = {
    'mode': "balancer=dict(type='MoKDAmortized' | 'MoKDExact' | 'FixedWeights')",
    'famo_update': "balancer=dict(type='MoKDAmortized', update='same_batch' | 'next_batch')",
    'weights': "balancer=dict(type='FixedWeights', weights=[...])",
    'weighting': "balancer=dict(type='MoKDAmortized', optimizer=dict(...), min_losses=...)",
}


def _refuse_old_keys(kwargs) -> None:
    old = [key for key in _OLD_KEYS if key in kwargs]
    if old:
        hints = '; '.join(f'{key!r} -> {_OLD_KEYS[key]}' for key in old)
        raise TypeError(
            f'optim_wrapper keys {old} were replaced by the balancer ({hints}); '
            'docs/design.md lists the rules'
        )


@contextmanager
def _nothing():
    yield


def _has_visualizer() -> bool:
    try:
        Visualizer.get_current_instance()
    except RuntimeError:
        return False
    return True


def _global_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over processes (a copy; identity when not distributed)."""
    values = values.detach().clone()
    dist.all_reduce(values, op='mean')
    return values
