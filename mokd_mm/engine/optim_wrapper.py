"""MMEngine adapter of the MoKD weighting rules: an OptimWrapper whose
``update_params`` takes one scalar loss per objective."""
import math
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine import dist
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from mokd_mm.core import (AmortizedWeighting, gradient_diagnostics,
                          gram_matrix, min_norm_weights, objective_gradients)
from mokd_mm.core.weighting import check_finite

MODES = ('famo', 'exact', 'fixed')
FAMO_UPDATES = ('same_batch', 'next_batch')


@OPTIM_WRAPPERS.register_module()
class MoKDOptimWrapper(OptimWrapper):
    """Optimizer wrapper that balances several objectives with MoKD.

    ``update_params(objectives)`` takes a dict ``{name: scalar loss}`` with
    exactly the names of ``objectives`` and updates the model:

    * ``mode='famo'`` (default): the amortized rule of the paper's section
      3.1 / Algorithm 1 (:class:`~mokd_mm.core.AmortizedWeighting`). The
      weight logits are learned from how much each ``log L_i`` dropped over
      the step: re-evaluated on the same batch after the step
      (``famo_update='same_batch'``; ``update_params`` then needs
      ``reevaluate``, a callable returning the objectives under the updated
      parameters) or read from the next batch
      (``famo_update='next_batch'``, no extra forward).
    * ``mode='exact'``: Theorem 3.1. One backward pass per objective gives
      ``g_i = grad log L_i``; the update is ``sum_i pi_i g_i`` with ``pi``
      the min-norm point of the simplex (:func:`~mokd_mm.core.min_norm_weights`).
    * ``mode='fixed'``: the weighted sum of eq. (3) with ``weights``.

    In a distributed run (``torch.distributed`` initialised, world size > 1)
    this wrapper owns all gradient communication: the objectives are averaged
    over processes before they set any weight, the combined gradients (or,
    in exact mode, the per-objective gradients, once) are averaged before the
    step. The model must therefore not sit in a DDP reducer: use
    ``model_wrapper_cfg=dict(type='MoKDDistributedDataParallel')``.

    Gradient clipping (``clip_grad``) acts on the combined gradient;
    ``accumulative_counts`` accumulates it (in famo mode the weights are
    learned from the last micro-batch of each step). ``dtype='float16'``
    enables autocast with dynamic loss scaling, ``'bfloat16'`` autocast
    alone. Each update logs ``mokd/pi_<name>`` (the weights) and, every
    ``diagnostics_interval`` updates, ``mokd/conflict`` (inner product of
    the raw gradients of the first two objectives), ``mokd/conflict_cos``
    and ``mokd/dominance`` (their norm ratio) to the MessageHub.

    Args:
        optimizer (Optimizer): the model's optimizer.
        mode (str): ``'famo'``, ``'exact'`` or ``'fixed'``.
        objectives (Sequence[str]): names of the objectives, K >= 2.
            Defaults to ``('distill', 'task')``.
        weights (dict, optional): ``{name: weight}`` for ``mode='fixed'``.
        famo_update (str): ``'same_batch'`` or ``'next_batch'``.
        weighting (dict, optional): keyword arguments of
            :class:`~mokd_mm.core.AmortizedWeighting` (``lr``,
            ``weight_decay``, ``min_losses``, ``eps``).
        diagnostics_interval (int): every how many updates to measure
            gradient conflict and dominance; 0 disables. Defaults to 50.
        dtype (str, optional): ``'float16'`` or ``'bfloat16'`` for mixed
            precision. Defaults to None (full precision).
        loss_scale (str | float): ``'dynamic'`` or a fixed scale, for
            float16. Defaults to ``'dynamic'``.
        **kwargs: ``accumulative_counts`` and ``clip_grad`` of
            :class:`~mmengine.optim.OptimWrapper`.
    """

    def __init__(self,
                 optimizer,
                 mode: str = 'famo',
                 objectives: Sequence[str] = ('distill', 'task'),
                 weights: Optional[Dict[str, float]] = None,
                 famo_update: str = 'same_batch',
                 weighting: Optional[dict] = None,
                 diagnostics_interval: int = 50,
                 dtype: Optional[str] = None,
                 loss_scale='dynamic',
                 **kwargs):
        super().__init__(optimizer, **kwargs)
        if mode not in MODES:
            raise ValueError(f'MoKDOptimWrapper mode must be one of {MODES}, '
                             f'got {mode!r}')
        if famo_update not in FAMO_UPDATES:
            raise ValueError(f'famo_update must be one of {FAMO_UPDATES}, got '
                             f'{famo_update!r}')
        self.objectives = list(objectives)
        if len(self.objectives) < 2 or len(set(self.objectives)) != len(
                self.objectives):
            raise ValueError('objectives must be >= 2 distinct names, got '
                             f'{self.objectives}')
        self.mode = mode
        self.famo_update = famo_update
        self.diagnostics_interval = diagnostics_interval
        self.fixed_weights = None
        if mode == 'fixed':
            if weights is None or set(weights) != set(self.objectives):
                raise ValueError(
                    "mode='fixed' needs weights for exactly the objectives "
                    f'{self.objectives}, got {weights}')
            self.fixed_weights = torch.tensor(
                [float(weights[name]) for name in self.objectives])
        elif weights is not None:
            raise ValueError(f"weights is only used with mode='fixed', not "
                             f'{mode!r}')
        self.weighting = None
        if mode == 'famo':
            self.weighting = AmortizedWeighting(
                len(self.objectives), names=self.objectives, **(weighting or {}))
        elif weighting:
            raise ValueError(f"weighting is only used with mode='famo', not "
                             f'{mode!r}')
        self._last_pi = None  # exact mode: the last min-norm solution
        self._previous = None  # next-batch mode: losses of the last step
        self._init_amp(dtype, loss_scale)

    # ----------------------------------------------------------------- amp
    def _init_amp(self, dtype, loss_scale) -> None:
        dtypes = {None: None, 'float16': torch.float16, 'bfloat16': torch.bfloat16}
        if dtype not in dtypes:
            raise ValueError(f'dtype must be one of {list(dtypes)}, got {dtype!r}')
        self.cast_dtype = dtypes[dtype]
        self.device_type = self._params()[0].device.type if self._params() else 'cpu'
        self.loss_scaler = None
        if self.cast_dtype is torch.float16:
            if loss_scale == 'dynamic':
                self.loss_scaler = torch.amp.GradScaler(self.device_type)
            else:
                self.loss_scaler = torch.amp.GradScaler(
                    self.device_type, init_scale=float(loss_scale),
                    growth_factor=1.0, backoff_factor=1.0, growth_interval=2**31 - 1)

    @contextmanager
    def optim_context(self, model):
        """MMEngine's context, plus autocast when ``dtype`` is set."""
        with super().optim_context(model):
            if self.cast_dtype is None:
                yield
            else:
                with torch.autocast(self.device_type, dtype=self.cast_dtype):
                    yield

    def _scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self.loss_scaler.scale(loss) if self.loss_scaler else loss

    # -------------------------------------------------------------- update
    def update_params(self,
                      objectives: Dict[str, torch.Tensor],
                      reevaluate: Optional[Callable[[], Dict[str, torch.Tensor]]] = None,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> Dict[str, float]:
        """Backward, and step when gradient accumulation says so.

        Args:
            objectives (dict[str, Tensor]): one scalar loss per objective.
            reevaluate (Callable, optional): returns the objectives of the
                same batch under the updated parameters; needed by
                ``mode='famo'`` with ``famo_update='same_batch'``. It is called
                under ``torch.no_grad()``.
            step_kwargs (dict, optional): passed to ``optimizer.step``.
            zero_kwargs (dict, optional): passed to ``optimizer.zero_grad``.

        Returns:
            dict[str, float]: what was logged (weights, diagnostics).
        """
        losses = self._stack(objectives)
        world = _global_mean(losses.detach().float())
        check_finite(world, self.objectives)
        if (self.mode == 'famo' and self.famo_update == 'same_batch'
                and reevaluate is None):
            raise ValueError("famo_update='same_batch' needs update_params("
                             '..., reevaluate=callable); pass it or use '
                             "famo_update='next_batch'")
        logs: Dict[str, float] = {}
        if self._diagnostics_due():
            logs.update(self._diagnostics(losses))
        if self.mode == 'exact':
            self._backward_exact(losses, world)
        else:
            self._backward_combined(losses, world)
        self._inner_count += 1
        if self.should_update():
            stepped = self._step(step_kwargs or {})
            self.zero_grad(**(zero_kwargs or {}))
            if self.mode == 'famo':
                self._learn_weights(world, reevaluate, stepped)
        for name, value in self.weights.items():
            logs[f'mokd/pi_{name}'] = value
        for key, value in logs.items():
            self.message_hub.update_scalar(f'train/{key}', value)
        return logs

    def _stack(self, objectives: Dict[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(objectives, dict):
            raise TypeError(
                'MoKDOptimWrapper.update_params takes a dict {objective: loss}, '
                f'got {type(objectives).__name__}. Under distributed training '
                "set model_wrapper_cfg=dict(type='MoKDDistributedDataParallel') "
                "so that the model's own train_step runs.")
        unknown = sorted(set(objectives) - set(self.objectives))
        missing = [n for n in self.objectives if n not in objectives]
        if unknown or missing:
            raise KeyError(f'objectives {unknown} are not configured and '
                           f'{missing} are missing; MoKDOptimWrapper.objectives'
                           f' = {self.objectives}')
        for name in self.objectives:
            loss = objectives[name]
            if not torch.is_tensor(loss) or loss.numel() != 1:
                raise ValueError(f'objective {name!r} must be a scalar tensor')
        return torch.stack([objectives[n].reshape(()).float() for n in self.objectives])

    def _backward_combined(self, losses: torch.Tensor, world: torch.Tensor) -> None:
        if self.mode == 'fixed':
            weights = self.fixed_weights.to(losses.device)
        else:
            if self.famo_update == 'next_batch' and self._previous is not None:
                # This batch's losses are the previous step's "after" values.
                self.weighting.update(self._previous, world)
                self._previous = None
            weights = self.weighting.effective_weights(world).to(losses.device)
        loss = self.scale_loss((weights * losses).sum())
        self._scale(loss).backward()

    def _backward_exact(self, losses: torch.Tensor, world: torch.Tensor) -> None:
        params = self._params()
        active = [i for i in range(len(losses)) if world[i] > 0]
        pi = torch.zeros(len(losses), dtype=torch.float64)
        if active:
            raw = objective_gradients([self._scale(losses[i]) for i in active],
                                      params, retain_graph=False)
            stacked = torch.stack(raw)
            dist.all_reduce(stacked, op='mean')  # the only communication
            log_grads = [g / world[i] for g, i in zip(stacked, active)]
            pi_active = min_norm_weights(gram_matrix(log_grads))
            pi[active] = pi_active
            combined = sum(p.to(g.dtype) * g for p, g in zip(pi_active, log_grads))
            self._add_to_grads(params, self.scale_loss(combined))
        self._last_pi = pi.float()

    def _learn_weights(self, before: torch.Tensor, reevaluate, stepped: bool) -> None:
        if not stepped:  # the loss scaler skipped an overflowing step
            return
        if self.famo_update == 'next_batch':
            self._previous = before
            return
        with torch.no_grad():
            after = _global_mean(self._stack(reevaluate()).detach())
        self.weighting.update(before, after)

    # ---------------------------------------------------------------- step
    def _step(self, step_kwargs: Dict) -> bool:
        """Average gradients over processes (unless exact mode already did),
        unscale, clip, step. Returns whether the optimizer stepped."""
        params = self._params()
        if self.mode != 'exact' and dist.get_world_size() > 1:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            dist.all_reduce_params([p.grad for p in params], op='mean',
                                   bucket_size_mb=25)
        if self.loss_scaler is None:
            if self.clip_grad_kwargs:
                self._clip_grad()
            self.optimizer.step(**step_kwargs)
            return True
        self.loss_scaler.unscale_(self.optimizer)
        if self.clip_grad_kwargs:
            self._clip_grad()
        scale = self.loss_scaler.get_scale()
        self.loss_scaler.step(self.optimizer, **step_kwargs)
        self.loss_scaler.update()
        return self.loss_scaler.get_scale() >= scale

    def step(self, **kwargs) -> None:
        raise RuntimeError('MoKDOptimWrapper steps inside update_params(objectives)')

    def backward(self, loss, **kwargs) -> None:
        raise RuntimeError('MoKDOptimWrapper back-propagates inside '
                           'update_params(objectives)')

    # --------------------------------------------------------- diagnostics
    def _diagnostics_due(self) -> bool:
        n = self.diagnostics_interval
        return n > 0 and self._inner_count % n == 0

    def _diagnostics(self, losses: torch.Tensor) -> Dict[str, float]:
        """Conflict and dominance of the raw gradients of the first two
        objectives (the paper's Figure 3); two extra backward passes."""
        params = self._params()
        grads = objective_gradients(
            [self._scale(losses[0]), self._scale(losses[1])], params,
            retain_graph=True)
        stacked = torch.stack(grads)
        dist.all_reduce(stacked, op='mean')
        if self.loss_scaler is not None:
            stacked = stacked / self.loss_scaler.get_scale()
        stats = gradient_diagnostics(gram_matrix(list(stacked)))
        return {f'mokd/{k}': v for k, v in stats.items() if math.isfinite(v)}

    # --------------------------------------------------------------- state
    def _params(self) -> List[torch.Tensor]:
        return [
            p for group in self.optimizer.param_groups for p in group['params']
            if p.requires_grad
        ]

    @staticmethod
    def _add_to_grads(params, flat: torch.Tensor) -> None:
        offset = 0
        for p in params:
            n = p.numel()
            g = flat[offset:offset + n].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad + g
            offset += n

    @property
    def weights(self) -> Dict[str, float]:
        """The current weights pi by objective (famo: softmax of the
        logits; exact: the last min-norm solution; fixed: the config)."""
        if self.mode == 'famo':
            pi = self.weighting.weights().cpu()
        elif self.mode == 'fixed':
            pi = self.fixed_weights
        elif self._last_pi is not None:
            pi = self._last_pi
        else:
            pi = torch.full((len(self.objectives), ), 1 / len(self.objectives))
        return dict(zip(self.objectives, pi.tolist()))

    def state_dict(self) -> dict:
        """The optimizer's state plus ``'mokd'``: the weight logits and their
        optimizer, the pending next-batch losses and the loss scaler."""
        state = super().state_dict()
        state['mokd'] = dict(
            objectives=list(self.objectives),
            mode=self.mode,
            previous=self._previous,
            weighting=self.weighting.state_dict() if self.weighting else None,
            loss_scaler=self.loss_scaler.state_dict() if self.loss_scaler else None)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        mokd = state_dict.pop('mokd', None)
        super().load_state_dict(state_dict)
        if mokd is None:
            return
        if mokd['objectives'] != self.objectives or mokd['mode'] != self.mode:
            raise ValueError(
                f"checkpoint was saved with mode={mokd['mode']!r}, objectives="
                f"{mokd['objectives']}; this run has mode={self.mode!r}, "
                f'objectives={self.objectives}')
        self._previous = mokd['previous']
        if self.weighting is not None:
            self.weighting.load_state_dict(mokd['weighting'])
        if self.loss_scaler is not None and mokd['loss_scaler']:
            self.loss_scaler.load_state_dict(mokd['loss_scaler'])


def _global_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over processes (a copy; identity when not distributed)."""
    values = values.detach().clone()
    dist.all_reduce(values, op='mean')
    return values

