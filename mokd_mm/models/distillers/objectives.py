"""Objectives: named groups of a distiller's losses, each balanced as one.

One vocabulary throughout the package: a *loss* is one named term
(``student.<key>`` from the student's own ``loss()``, ``distill.<name>`` from
``distill_losses``); an *objective* is a named group of losses, summed; the
config's ``objectives`` maps each objective's name to glob patterns over loss
names; the balancer weighs the objectives' values.
"""

import fnmatch
from collections import OrderedDict
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

DEFAULT = dict(distill=['distill.*'], task=['student.*'])
# An objective's value in the logs: 'loss_distill' is the paper's L_distill.
OBJECTIVE_LOG_PREFIX = 'loss_'


def loss_value(value) -> torch.Tensor:
    """A loss as a scalar: a tensor's mean, or the sum of a list's means (e.g.
    a detector's per-level losses)."""
    if torch.is_tensor(value):
        return value.mean()
    if isinstance(value, (list, tuple)) and all(torch.is_tensor(v) for v in value):
        return sum(v.mean() for v in value)
    raise TypeError(f'a loss must be a tensor or a list of tensors, got {type(value).__name__}')


class Objectives:
    """The objectives of a distiller, from ``{name: [glob pattern, ...]}``.

    Iterating gives the objectives' names in order (what
    ``MoKDOptimWrapper.objectives`` takes). Every loss must match the
    patterns of exactly one objective.

    Args:
        patterns (Mapping[str, Sequence[str]], optional): defaults to
            ``dict(distill=['distill.*'], task=['student.*'])``.
    """

    def __init__(self, patterns: Optional[Mapping[str, Sequence[str]]] = None):
        self.patterns = OrderedDict(
            (name, list(globs)) for name, globs in (patterns or DEFAULT).items()
        )
        if len(self.patterns) < 2:
            raise ValueError(f'objectives needs >= 2 entries, got {list(self.patterns)}')
        self._assignments: Dict[Tuple[str, ...], Dict[str, str]] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    @property
    def names(self) -> List[str]:
        return list(self.patterns)

    def objective_of(self, loss: str) -> str:
        """The objective whose patterns ``loss`` matches (exactly one)."""
        hits = [
            name
            for name, globs in self.patterns.items()
            if any(fnmatch.fnmatchcase(loss, g) for g in globs)
        ]
        if len(hits) != 1:
            where = 'no objective' if not hits else f'several objectives {hits}'
            raise ValueError(
                f'loss {loss!r} is assigned to {where}; objectives = {dict(self.patterns)}'
            )
        return hits[0]

    @staticmethod
    def is_loss(key: str) -> bool:
        """Every distillation loss, and the student's outputs that its own
        library counts as losses (keys containing ``'loss'``; others, such as
        accuracies, are only logged)."""
        return key.startswith('distill.') or 'loss' in key

    def sum(self, losses: Mapping[str, torch.Tensor]):
        """Sum the losses into the objectives.

        Args:
            losses (Mapping[str, Tensor | list[Tensor]]): by loss name, each
                taken as :func:`loss_value`.

        Returns:
            tuple[dict, dict]: ``{objective: scalar}`` and the log variables:
            every loss and non-loss output (detached), every objective as
            ``loss_<name>`` (the paper's ``L_distill``, ``L_task``). MMEngine's
            logger averages every key containing ``loss`` over its window,
            so a logged objective is the sum of its logged losses.
        """
        values = OrderedDict((key, loss_value(value)) for key, value in losses.items())
        keys = tuple(k for k in values if self.is_loss(k))
        if keys not in self._assignments:
            self._assignments[keys] = {k: self.objective_of(k) for k in keys}
        objectives = OrderedDict((name, None) for name in self.patterns)
        for key, objective in self._assignments[keys].items():
            total = objectives[objective]
            objectives[objective] = values[key] if total is None else total + values[key]
        empty = [name for name, value in objectives.items() if value is None]
        if empty:
            raise ValueError(f'objectives {empty} received no loss; the losses are {list(keys)}')
        log_vars = OrderedDict((k, v.detach()) for k, v in values.items())
        for name, value in objectives.items():
            log_vars[f'{OBJECTIVE_LOG_PREFIX}{name}'] = value.detach()
        return objectives, log_vars
