"""The distiller in its parts: :class:`MoKDDistiller` (the training step),
:class:`DistillLoss` (taps, connectors and a loss), :class:`Objectives`
(losses grouped and summed), the teacher's loading and checks
(:mod:`.teacher`) and model configs from files (:func:`load_model_config`)."""

from .distill_loss import DistillLoss, declared_channels
from .model_config import load_model_config
from .mokd_distiller import MoKDDistiller
from .objectives import Objectives, loss_value

__all__ = [
    'DistillLoss',
    'MoKDDistiller',
    'Objectives',
    'declared_channels',
    'load_model_config',
    'loss_value',
]
