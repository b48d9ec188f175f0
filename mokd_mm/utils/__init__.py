from .checkpoint_compat import (AtomicLocalBackend, atomic_write, extract_student,
                                register_atomic_local_backend,
                                register_mmengine_safe_globals, save_checkpoint_atomic)
from .launch import (add_common_arguments, enable_amp, enable_visualization, load_config,
                     prepare_distributed)

register_mmengine_safe_globals()
register_atomic_local_backend()

__all__ = [
    'AtomicLocalBackend', 'atomic_write', 'extract_student',
    'register_atomic_local_backend', 'register_mmengine_safe_globals',
    'save_checkpoint_atomic',
    'add_common_arguments', 'enable_amp', 'enable_visualization', 'load_config',
    'prepare_distributed'
]
