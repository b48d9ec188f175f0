from .optim_wrapper import MoKDOptimWrapper
from .optim_wrapper_constructor import MoKDOptimWrapperConstructor

__all__ = ['MoKDOptimWrapper', 'MoKDOptimWrapperConstructor']
