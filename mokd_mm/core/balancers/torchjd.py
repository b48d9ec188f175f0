"""TorchJD's aggregators and weightings (SimplexLab/TorchJD, ``torchjd``)
as balancers, through one adapter."""

import inspect
from typing import Dict, Optional

import numpy as np
import torch

from .base import SeededBalancer

__all__ = ['TorchJDBalancer']

INSTALL_HINT = (
    'pip install "torchjd[nash_mtl,quadprog_projector]==0.18.0" (tools/setup_env.sh installs it)'
)


def _torchjd_aggregation():
    try:
        from torchjd import aggregation
    except ImportError as err:
        raise ImportError(f'TorchJDBalancer needs the package torchjd: {INSTALL_HINT}') from err
    return aggregation


def _build(spec, base: type, role: str, num_objectives: int):
    """An instance of ``torchjd.aggregation.<type>`` from ``dict(type=...,
    **kwargs)`` (``n_tasks`` filled in where the class takes it), or the
    instance given."""
    aggregation = _torchjd_aggregation()
    if isinstance(spec, base):
        return spec
    spec = dict(spec)
    name = spec.pop('type', None)
    cls = getattr(aggregation, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        choices = sorted(
            n for n, v in vars(aggregation).items() if isinstance(v, type) and issubclass(v, base)
        )
        raise ValueError(f'{role} type {name!r} is not a TorchJD {base.__name__}: one of {choices}')
    if 'n_tasks' in inspect.signature(cls).parameters:
        spec.setdefault('n_tasks', num_objectives)
    return cls(**spec)


class TorchJDBalancer(SeededBalancer):
    """Any TorchJD aggregator (the K x P Jacobian to the update) or Gramian
    weighting (the K x K Gramian ``J J^T`` to the weights) as a rule that
    needs the per-objective gradients, e.g. ``dict(type='TorchJDBalancer',
    aggregator=dict(type='UPGrad'))`` or ``weighting=dict(type='UPGradWeighting')``.

    The Jacobian is the balancer's: the rows are the objectives' gradients
    on the parameters they all reach (``parameters='shared'``, TorchJD's
    ``mtl_backward`` semantics; the others keep their own gradients),
    averaged over processes, unscaled under float16. The weights a
    weighted aggregator applies are logged like every rule's
    (``mokd/weight_<name>``); aggregators that are no fixed combination of
    the rows (``GradDrop``, ``ConFIG``, ``TrimmedMean``, ...) log none.

    Randomness (``PCGrad``'s orders, ``GradDrop``'s draws, ``Random``'s
    weights) comes from this balancer's own generator: every process draws
    the same and a resumed run continues the sequence. The state of
    stateful aggregators (``NashMTL``'s warm start, ``GradVac``'s targets)
    is saved with the checkpoint.

    Args:
        num_objectives (int): K >= 2.
        names (Sequence[str], optional): the objectives' names.
        aggregator (dict | torchjd.aggregation.Aggregator, optional): the
            rule, by class name and arguments (``n_tasks`` is filled in).
            Defaults to ``dict(type='UPGrad')``, TorchJD's own rule.
        weighting (dict | torchjd.aggregation.Weighting, optional): a
            weighting of the Gramian instead of an aggregator.
        seed (int, optional): of the rule's own generator.
        warn_interval, parameters: see :class:`Balancer`.
    """

    needs_gradients = True

    def __init__(
        self,
        num_objectives: int,
        names=None,
        aggregator=None,
        weighting=None,
        seed: Optional[int] = None,
        warn_interval: int = 100,
        parameters: str = 'shared',
    ):
        super().__init__(num_objectives, names, seed, warn_interval, parameters)
        if aggregator is not None and weighting is not None:
            raise ValueError('TorchJDBalancer takes an aggregator or a weighting, not both')
        if aggregator is None and weighting is None:
            aggregator = dict(type='UPGrad')
        aggregation = _torchjd_aggregation()
        if aggregator is not None:
            self.rule = _build(aggregator, aggregation.Aggregator, 'aggregator', num_objectives)
        else:
            self.rule = _build(weighting, aggregation.Weighting, 'weighting', num_objectives)
        from torchjd import Stateful

        self._stateful = [m for m in self.rule.modules() if isinstance(m, Stateful)]

    def _combine_gradients(self, grads, objectives):
        aggregation = _torchjd_aggregation()
        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        devices = [grads.device] if grads.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            if isinstance(self.rule, aggregation.Weighting):
                weights = self.rule(grads @ grads.T)
            elif isinstance(self.rule, aggregation.WeightedAggregator):
                weights = self.rule.weighting(grads)
            else:
                return self.rule(grads), None
        weights = weights.to(grads)
        return weights @ grads, weights

    # ---------------------------------------------------------------- state
    def state_dict(self) -> Dict:
        state = super().state_dict()
        state['rule'] = {str(i): _module_state(m) for i, m in enumerate(self._stateful)}
        return state

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        for i, module in enumerate(self._stateful):
            saved = state['rule'].get(str(i), {})
            for key, value in saved.items():
                setattr(module, key, _from_state(value))
            # A cvxpy problem (NashMTL's) is no state: rebuilt around the
            # restored warm start, as the rule does at its first step.
            if getattr(module, 'step', 0) and hasattr(module, '_init_optim_problem'):
                module._init_optim_problem()


_MODULE_INTERNALS = set(vars(torch.nn.Module()))


def _module_state(module: torch.nn.Module) -> Dict:
    """A stateful rule's own attributes and buffers that hold state."""
    values = dict(vars(module), **dict(module.named_buffers(recurse=False)))
    return {k: _to_state(v) for k, v in values.items() if _is_state(k, v)}


def _is_state(key: str, value) -> bool:
    """A rule's own attribute holding state (tensors, arrays, numbers)."""
    if key in _MODULE_INTERNALS:
        return False
    plain = (torch.Tensor, np.ndarray, torch.dtype, int, float, bool, type(None))
    if isinstance(value, tuple):
        return all(isinstance(v, plain) for v in value)
    return isinstance(value, plain)


def _to_state(value):
    """Arrays become tensors and dtypes names, marked so that they come
    back as they were; weights-only loading admits these."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()  # the rules update their state in place
    if isinstance(value, np.ndarray):
        return dict(numpy=torch.from_numpy(np.array(value)))
    if isinstance(value, torch.dtype):
        return dict(dtype=str(value).replace('torch.', ''))
    if isinstance(value, tuple):
        return dict(tuple=[_to_state(v) for v in value])
    return value


def _from_state(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict) and 'numpy' in value:
        return value['numpy'].numpy().copy()
    if isinstance(value, dict) and 'dtype' in value:
        return getattr(torch, value['dtype'])
    if isinstance(value, dict) and 'tuple' in value:
        return tuple(_from_state(v) for v in value['tuple'])
    return value
