from .checkpoint_compat import (extract_student, register_mmengine_safe_globals,
                                save_checkpoint_atomic)
from .launch import enable_amp, enable_visualization, prepare_distributed

register_mmengine_safe_globals()

__all__ = [
    'extract_student', 'register_mmengine_safe_globals', 'save_checkpoint_atomic',
    'enable_amp', 'enable_visualization', 'prepare_distributed'
]
