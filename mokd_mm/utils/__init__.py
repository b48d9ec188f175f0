from .checkpoint_compat import (AtomicLocalBackend, atomic_write, extract_student,
                                register_atomic_local_backend,
                                register_mmengine_safe_globals, save_checkpoint_atomic)
from .launch import enable_amp, enable_visualization, prepare_distributed

register_mmengine_safe_globals()
register_atomic_local_backend()

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'extract_student',
    'register_atomic_local_backend', 'register_mmengine_safe_globals',
    'save_checkpoint_atomic',
    'enable_amp', 'enable_visualization', 'prepare_distributed'
]
