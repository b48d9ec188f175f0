# Importing the subpackages registers their components (mmpretrain: cifar,
# heads; mmdet: vidt; every scope: registration).
from . import cifar, heads, registration, vidt  # noqa: F401
from .distillers import DistillLoss, MoKDDistiller
from .wrappers import MoKDDistributedDataParallel

__all__ = ['DistillLoss', 'MoKDDistiller', 'MoKDDistributedDataParallel']
