from mokd_mm.core.balancers import RULES
from mokd_mm.registry import BALANCERS

from .checkpoint_hook import SafeCheckpointHook
from .optim_wrapper import MoKDOptimWrapper, NonFiniteUpdateError
from .optim_wrapper_constructor import MoKDOptimWrapperConstructor

for _rule in RULES:
    BALANCERS.register_module(module=_rule)

__all__ = [
    'MoKDOptimWrapper',
    'MoKDOptimWrapperConstructor',
    'NonFiniteUpdateError',
    'SafeCheckpointHook',
]
