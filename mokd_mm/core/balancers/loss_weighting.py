"""Rules that weigh the objectives from their values alone: the update is
the gradient of ``sum_i w_i L_i``, one ordinary backward pass.

Each follows its publication; where FAMO's public collection of rules
(Cranial-XIX/FAMO, ``methods/weight_methods.py``) fixes details the paper
leaves open, the class says so.
"""

import copy
from typing import Dict, Mapping

import torch

from .base import Balancer, SeededBalancer, build_optimizer

__all__ = [
    'FixedWeights',
    'ScaleInvariant',
    'UncertaintyWeighting',
    'DynamicWeightAverage',
    'RandomLossWeighting',
]


class FixedWeights(Balancer):
    """The weighted sum of the paper's eq. (3): fixed ``w_i``.

    Args:
        num_objectives (int): K.
        names (Sequence[str], optional): the objectives' names.
        weights (Mapping[str, float] | Sequence[float]): by name, or in
            order; defaults to all ones.
    """

    def __init__(self, num_objectives: int, names=None, weights=None, warn_interval: int = 100):
        super().__init__(num_objectives, names, warn_interval)
        if weights is None:
            weights = [1.0] * num_objectives
        if isinstance(weights, Mapping):
            if set(weights) != set(self.names):
                raise ValueError(
                    f'FixedWeights needs weights for exactly the objectives '
                    f'{self.names}, got {dict(weights)}'
                )
            weights = [weights[n] for n in self.names]
        if len(weights) != num_objectives:
            raise ValueError(
                f'FixedWeights got {len(weights)} weights for {num_objectives} objectives'
            )
        self.fixed = torch.tensor([float(w) for w in weights], dtype=torch.float64)

    def _objective_weights(self, objectives):
        return self.fixed.to(objectives.device, objectives.dtype)


class ScaleInvariant(Balancer):
    """Scale-invariant scalarization: the gradient of ``sum_i log L_i``,
    i.e. weights ``1 / L_i`` (as FAMO's paper and code compare against).
    An objective that is not positive is left out (weight 0, a warning)."""

    def _objective_weights(self, objectives):
        positive = objectives > 0
        self._leave_out(
            ~positive,
            objectives,
            'are not positive (no logarithm)',
            'make the objectives positive, or weigh them with a rule that takes no logarithm '
            '(e.g. FixedWeights)',
        )
        return torch.where(
            positive,
            1 / torch.where(positive, objectives, torch.ones_like(objectives)),
            torch.zeros_like(objectives),
        )


class UncertaintyWeighting(Balancer):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR
    2018): minimise ``sum_i 0.5 (exp(-s_i) L_i + s_i)`` over the model and
    the log-variances ``s`` (0 at the start).

    The model's update uses the weights ``0.5 exp(-s_i)``; after the step,
    :meth:`update` steps ``s`` along ``0.5 (1 - exp(-s_i) L_i)`` with its own
    optimizer (FAMO's experiments train ``s`` with Adam at lr 0.025 beside
    the model's parameters, which is the same update).

    Args:
        optimizer (dict | Callable, optional): the optimizer of ``s``.
            Defaults to ``dict(type='Adam', lr=0.025)``; a dict without
            ``type`` changes only what it names.
    """

    def __init__(
        self,
        num_objectives: int,
        names=None,
        optimizer=None,
        warn_interval: int = 100,
    ):
        super().__init__(num_objectives, names, warn_interval)
        self.log_variances = torch.zeros(num_objectives, requires_grad=True)
        self.optimizer = build_optimizer(
            optimizer, [self.log_variances], dict(type='Adam', lr=0.025)
        )

    def _objective_weights(self, objectives):
        self.log_variances.data = self.log_variances.data.to(objectives.device, objectives.dtype)
        return 0.5 * torch.exp(-self.log_variances.detach())

    def update(self, objectives, after=None):
        self._check(objectives)
        s = self.log_variances
        s.data = s.data.to(objectives.device, objectives.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        s.grad = 0.5 * (1 - torch.exp(-s.detach()) * objectives.detach())
        self.optimizer.step()

    def log_vars(self) -> Dict[str, float]:
        logs = super().log_vars()
        logs.update(
            {f'log_var_{n}': float(v) for n, v in zip(self.names, self.log_variances.detach())}
        )
        return logs

    def state_dict(self):
        return dict(
            log_variances=self.log_variances.detach().clone(),
            optimizer=self.optimizer.state_dict(),
        )

    def load_state_dict(self, state):
        if 'log_vars' in state:
            raise KeyError(
                "UncertaintyWeighting's state names its log-variances 'log_variances', not "
                "'log_vars' (a checkpoint of an earlier version of this rule)"
            )
        super().load_state_dict(state)
        self.log_variances.data = state['log_variances'].detach().clone()
        self.optimizer.load_state_dict(copy.deepcopy(state['optimizer']))


class DynamicWeightAverage(Balancer):
    """Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, MTAN):
    ``lambda_i = K exp(r_i / T) / sum_j exp(r_j / T)`` with ``r_i`` the
    ratio of objective i's mean over the last ``window`` steps to its mean
    over the ``window`` steps before, and the update the gradient of
    ``sum_i lambda_i L_i``.

    MTAN measures ``r`` over epochs; like FAMO's port, this rule keeps the
    last ``2 * window`` objectives (ones before any are seen) and uses
    ``lambda = 1`` until more than ``window`` have been seen. FAMO's port
    then averages instead of summing (its weights sum to 1, MTAN's to K).

    Args:
        window (int): steps per averaging window. Defaults to 25 (FAMO's).
        temperature (float): T. Defaults to 2 (MTAN's).
    """

    def __init__(
        self,
        num_objectives: int,
        names=None,
        window: int = 25,
        temperature: float = 2.0,
        warn_interval: int = 100,
    ):
        super().__init__(num_objectives, names, warn_interval)
        if window < 1 or temperature <= 0:
            raise ValueError(
                f'DynamicWeightAverage needs window >= 1 and temperature > 0, '
                f'got {window}, {temperature}'
            )
        self.window = window
        self.temperature = temperature
        self.history = torch.ones(2 * window, num_objectives, dtype=torch.float64)
        self.seen = 0

    def _objective_weights(self, objectives):
        history = torch.cat([self.history[1:].to(objectives), objectives[None]])
        self.history = history
        weights = torch.ones_like(objectives)
        if self.seen > self.window:
            ratio = history[self.window :].mean(0) / history[: self.window].mean(0)
            weights = self.num_objectives * torch.softmax(ratio / self.temperature, 0)
        self.seen += 1
        return weights

    def state_dict(self):
        return dict(history=self.history.clone(), seen=self.seen)

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.history = state['history'].clone()
        self.seen = int(state['seen'])


class RandomLossWeighting(SeededBalancer):
    """Random loss weighting (Lin et al., TMLR 2022): at every step
    ``w = softmax(n)``, ``n ~ N(0, I_K)``, drawn from the rule's own
    generator (``seed``, see :class:`SeededBalancer`)."""

    def _objective_weights(self, objectives):
        draw = torch.randn(self.num_objectives, generator=self.generator)
        return torch.softmax(draw.to(objectives), 0)
