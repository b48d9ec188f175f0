from .launch import (add_common_arguments, enable_amp, enable_visualization, load_config,
                     prepare_distributed)

__all__ = ['add_common_arguments', 'enable_amp', 'enable_visualization', 'load_config',
           'prepare_distributed']
