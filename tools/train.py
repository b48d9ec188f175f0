"""Train a model (a MoKD distillation, or any mmdet / mmpretrain config).

Same arguments as mmdet's ``tools/train.py``; ``--amp`` gives a MoKD config
a float16 ``MoKDOptimWrapper`` (dynamic loss scaling), as mmdet's does.
"""

import argparse

from cli import add_common_arguments, enable_amp, load_config, prepare_distributed
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mokd_mm.checkpoint import newest_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='scale the lr with the batch size'
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in the '
        'work dir when no path is given',
    )
    add_common_arguments(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        # The newest complete checkpoint of the work dir (not only what
        # last_checkpoint names: a kill can leave it one interval behind).
        latest = newest_checkpoint(cfg.work_dir)
        if latest is None:
            print_log(
                f'--resume: {cfg.work_dir} holds no checkpoint yet; training starts from scratch',
                logger='current',
            )
        cfg.resume, cfg.load_from = latest is not None, latest
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    prepare_distributed(cfg)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
