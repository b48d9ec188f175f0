"""Distillation-Oriented Trainer (Zhao et al., ICCV 2023; megvii-research/
mdistiller, ``mdistiller/engine/dot.py``) as a balancer."""

from typing import Dict, Optional

import torch

from .base import Balancer

__all__ = ['DOT']


class DOT(Balancer):
    """DOT: one momentum for the task gradient and a larger one for the
    distillation gradient, SGD otherwise.

    With ``m_task = momentum - delta``, ``m_kd = momentum + delta`` and
    buffers that start as the first gradient they receive, every coordinate
    of a parameter that both objectives reach gets::

        b_task <- m_task * b_task + (g_task + weight_decay * theta)
        b_kd   <- m_kd * b_kd + g_kd
        update  = b_task + b_kd

    a coordinate that only one objective reaches uses that objective's
    buffer with the mean momentum ``momentum`` and with weight decay (as
    mdistiller's ``DistillationOrientedTrainer`` does, including its start:
    a distillation-only buffer starts as the gradient without the decay).
    The model optimizer then applies ``theta <- theta - lr * update``.

    DOT is the momenta: the model's optimizer must be ``SGD`` with
    ``momentum=0`` and ``weight_decay=0`` (they would act a second time),
    and gradients cannot be accumulated over micro-batches (the momenta
    would advance once per micro-batch); :meth:`check_compatible` refuses
    both (``MoKDOptimWrapper`` calls it). The learning rate and its schedule
    stay the optimizer's. A step whose gradients are not finite (a float16
    overflow, which the loss scaler then skips) leaves the buffers as they
    were.

    Args:
        num_objectives (int): 2.
        names (Sequence[str], optional): the objectives' names; must
            contain ``distill`` and ``task``.
        distill (str): the distillation objective. Defaults to ``'distill'``.
        task (str): the task objective. Defaults to ``'task'``.
        momentum (float): the mean momentum. Defaults to 0.9.
        delta (float): ``m_kd - momentum``. Defaults to 0.075 (mdistiller's).
        weight_decay (float): applied through the task buffer. Defaults to 0.
        warn_interval (int): see :class:`Balancer`.
    """

    needs_gradients = True
    needs_parameters = True

    def __init__(
        self,
        num_objectives: int = 2,
        names=None,
        distill: str = 'distill',
        task: str = 'task',
        momentum: float = 0.9,
        delta: float = 0.075,
        weight_decay: float = 0.0,
        warn_interval: int = 100,
    ):
        super().__init__(num_objectives, names or [distill, task], warn_interval)
        if num_objectives != 2 or {distill, task} != set(self.names):
            raise ValueError(
                f'DOT weighs a distillation and a task objective named {distill!r} and '
                f'{task!r}; got {num_objectives} objectives {self.names}'
            )
        if not 0 <= momentum - delta <= momentum + delta < 1 or weight_decay < 0:
            raise ValueError(
                'DOT needs 0 <= momentum - delta and momentum + delta < 1 and weight_decay '
                f'>= 0, got momentum={momentum}, delta={delta}, weight_decay={weight_decay}'
            )
        self.kd, self.task = self.names.index(distill), self.names.index(task)
        self.momentum, self.delta, self.weight_decay = momentum, delta, weight_decay
        # Per coordinate: the two buffers and whether each has started.
        self.buffers: Optional[torch.Tensor] = None  # (2, P): task, kd
        self.started: Optional[torch.Tensor] = None  # (2, P) bool

    def check_compatible(self, optimizer: torch.optim.Optimizer, accumulation: int = 1) -> None:
        groups = optimizer.param_groups
        plain_sgd = isinstance(optimizer, torch.optim.SGD) and all(
            g.get('momentum', 0) == 0 and g.get('weight_decay', 0) == 0 and not g.get('nesterov')
            for g in groups
        )
        if not plain_sgd:
            raise ValueError(
                'DOT applies its own momenta and weight decay: give the model optimizer '
                "dict(type='SGD', momentum=0, weight_decay=0) and DOT(momentum=..., "
                f'weight_decay=...); got {type(optimizer).__name__} with '
                f'{[{k: g.get(k) for k in ("momentum", "weight_decay")} for g in groups]}'
            )
        if accumulation > 1:
            raise ValueError(
                f'DOT advances its momenta once per step; accumulative_counts={accumulation} '
                'would advance them once per micro-batch'
            )

    def combine_gradients(self, grads, objectives, reached=None, params=None) -> torch.Tensor:
        if params is None:
            raise ValueError('DOT needs the parameters (weight decay): combine_gradients(params=)')
        self._check(objectives)
        self.steps += 1
        self.applied = None  # no fixed combination of the two gradients
        if not bool(grads.isfinite().all()):
            return grads.sum(0)  # the loss scaler skips this step; buffers unchanged
        if reached is None:
            reached = torch.ones_like(grads, dtype=torch.bool)
        if self.buffers is None or self.buffers.shape != (2, grads.shape[1]):
            self.buffers = torch.zeros(2, grads.shape[1], dtype=grads.dtype, device=grads.device)
            self.started = torch.zeros(2, grads.shape[1], dtype=torch.bool, device=grads.device)
        task, kd = reached[self.task], reached[self.kd]
        shared = task & kd
        decay = self.weight_decay * params.to(grads)
        mean = grads.new_tensor(self.momentum)
        m_task = torch.where(shared, grads.new_tensor(self.momentum - self.delta), mean)
        m_kd = torch.where(shared, grads.new_tensor(self.momentum + self.delta), mean)
        task_grad = grads[self.task] + decay
        kd_grad = grads[self.kd]
        steps = (  # (reached, gradient once started, gradient that starts the buffer, momentum)
            (task, task_grad, task_grad, m_task),
            (kd, torch.where(shared, kd_grad, kd_grad + decay), kd_grad, m_kd),
        )
        for row, (mask, gradient, first, momentum) in enumerate(steps):
            moved = torch.where(self.started[row], momentum * self.buffers[row] + gradient, first)
            self.buffers[row] = torch.where(mask, moved, self.buffers[row])
            self.started[row] |= mask
        return (self.buffers * torch.stack([task, kd]).to(grads)).sum(0)

    def state_dict(self) -> Dict:
        return dict(buffers=self.buffers, started=self.started)

    def load_state_dict(self, state: Dict) -> None:
        super().load_state_dict(state)
        self.buffers = None if state['buffers'] is None else state['buffers'].clone()
        self.started = None if state['started'] is None else state['started'].clone()
