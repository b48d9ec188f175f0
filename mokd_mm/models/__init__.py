from . import registration  # noqa: F401  (connectors and losses)
from .distillers import DistillLoss, MoKDDistiller
from .wrappers import MoKDDistributedDataParallel

__all__ = ['DistillLoss', 'MoKDDistiller', 'MoKDDistributedDataParallel']
