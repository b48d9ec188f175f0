"""Helpers of tools/train.py and tools/test.py that adjust a config to the
command line and to the machine."""
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import OPTIM_WRAPPERS, init_default_scope


def enable_amp(cfg: Config) -> None:
    """``--amp``: float16 autocast with dynamic loss scaling.

    A :class:`~mokd_mm.engine.MoKDOptimWrapper` gets ``dtype='float16'``
    (unless a dtype is set); other wrappers become MMEngine's
    ``AmpOptimWrapper`` as mmdet's tool does.
    """
    from mokd_mm.engine import MoKDOptimWrapper
    wrapper = cfg.optim_wrapper
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    wrapper_type = OPTIM_WRAPPERS.get(wrapper.get('type', 'OptimWrapper'))
    if wrapper_type is not None and issubclass(wrapper_type, MoKDOptimWrapper):
        wrapper.setdefault('dtype', 'float16')
    elif wrapper.get('type') == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in the config.', logger='current')
    else:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.loss_scale = 'dynamic'


def enable_visualization(cfg: Config, show: bool, show_dir, wait_time: float) -> None:
    """``--show`` / ``--show-dir`` for mmdet's DetVisualizationHook and
    mmpretrain's VisualizationHook."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise KeyError('--show/--show-dir need default_hooks.visualization in '
                       'the config')
    hook.show = show
    hook.wait_time = wait_time
    if cfg.get('default_scope') == 'mmdet':
        hook.draw = True
        if show_dir:
            hook.test_out_dir = show_dir
    else:
        hook.enable = True
        if show_dir:
            hook.out_dir = show_dir


def prepare_distributed(cfg: Config) -> None:
    """Distributed runs on a machine without CUDA use the gloo backend.

    MMEngine's launcher init calls ``torch.cuda.set_device``, which fails
    without a GPU; for ``--launcher pytorch`` the process group is
    initialised here instead (the Runner then reuses it).
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
