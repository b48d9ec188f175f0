"""Forward passes that leave the model as it was: the same-batch
re-evaluation of the amortized rule (Algorithm 1, line 10: "frozen model
inference"), and activation checkpointing's recomputation during backward."""

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import parametrize

__all__ = ['frozen_norm_statistics', 'reevaluation_mode']


def _is_stochastic(module: nn.Module) -> bool:
    """Dropout and stochastic depth, whatever library defines them, and
    ``nn.MultiheadAttention``, which drops attention weights itself (no
    dropout submodule) while in training mode."""
    return (
        isinstance(module, nn.modules.dropout._DropoutNd)
        or 'DropPath' in type(module).__name__
        or isinstance(module, nn.MultiheadAttention)
        and module.dropout > 0
    )


@contextmanager
def frozen_norm_statistics(model: nn.Module):
    """BatchNorm layers in training mode keep normalising with the batch's
    statistics but do not update their running statistics or counters
    inside the context; they are restored on exit.

    Forward passes that must not count as a training step run inside it:
    the same-batch re-evaluation, and the recomputation that activation
    checkpointing (``with_cp``) runs during every backward pass.
    """
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    saved = [
        (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
        for m in norms
    ]
    try:
        for m in norms:
            m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@contextmanager
def reevaluation_mode(model: nn.Module):
    """Run ``model`` again on the same batch without changing it.

    Inside the context: no autograd; BatchNorm layers still normalise with
    the batch's statistics (as in the training forward being compared
    against) but do not update their running statistics or counters
    (:func:`frozen_norm_statistics`); dropout and drop-path are off (a second
    random mask would add noise to the measured improvement); parametrized
    weights (orthogonal connectors) are computed once. Everything is
    restored on exit.
    """
    stochastic = [m for m in model.modules() if _is_stochastic(m) and m.training]
    try:
        for m in stochastic:
            m.eval()
        with frozen_norm_statistics(model), torch.no_grad(), parametrize.cached():
            yield
    finally:
        for m in stochastic:
            m.train()
