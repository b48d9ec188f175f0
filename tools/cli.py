"""What tools/train.py and tools/test.py share: mmdet's arguments, and the
changes they make to a config for the command line and the machine. Tool
plumbing, kept out of the installed package."""

import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

# Registers mokd_mm's components and its safe checkpoint loading (--resume,
# load_from on torch >= 2.6), also for configs that do not import it.
import mokd_mm  # noqa: F401,E402


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments train.py and test.py share with mmdet's tools."""
    parser.add_argument('--work-dir', help='the dir for logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (e.g. model.teacher_ckpt=x.pth)',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with ``--cfg-options``, the launcher and
    the work dir (``--work-dir``, the config's, or
    ``work_dirs/<config name>``) applied; sets ``LOCAL_RANK``."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def enable_amp(cfg: Config) -> None:
    """``--amp``: as mmdet's and mmpretrain's own train.py do, the wrapper
    becomes MMEngine's ``AmpOptimWrapper``; a MoKD config's
    ``MoKDOptimWrapperConstructor`` then builds a float16
    ``MoKDOptimWrapper`` instead (one mechanism for their tools and ours)."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') == 'AmpOptimWrapper' or wrapper.get('dtype') is not None:
        print_log('AMP training is already enabled in the config.', logger='current')
        return
    wrapper.type = 'AmpOptimWrapper'
    wrapper.setdefault('loss_scale', 'dynamic')


def enable_visualization(cfg: Config, show: bool, show_dir, wait_time: float) -> None:
    """``--show`` / ``--show-dir`` for mmdet's DetVisualizationHook and
    mmpretrain's VisualizationHook."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise KeyError('--show/--show-dir need default_hooks.visualization in the config')
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


def enable_tta(cfg: Config) -> None:
    """``--tta``: the config's ``tta_model`` wraps its model (a MoKD config's
    distiller, which predicts with the student) and ``tta_pipeline`` becomes
    the test pipeline, as in mmdet's and mmpretrain's test.py."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise KeyError(f'--tta needs {" and ".join(missing)} in the config')
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)


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
