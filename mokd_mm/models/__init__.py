from . import cifar, registration  # noqa: F401  (registration only)
from .distillers import DistillLoss, MoKDDistiller
from .wrappers import MoKDDistributedDataParallel

__all__ = ['DistillLoss', 'MoKDDistiller', 'MoKDDistributedDataParallel']
