"""Test (evaluate) a checkpoint: a MoKD distillation config evaluates its
student; a plain mmdet / mmpretrain config evaluates that model (e.g. a
student exported by ``tools/export_student.py``).

Same arguments as mmdet's ``tools/test.py``, and one more: the checkpoint
is loaded strictly (a key missing from it, or one the model lacks, is an
error naming the keys, where mmdet's tool only warns), unless
``--non-strict`` is given.
"""

import argparse

from cli import (
    add_common_arguments,
    enable_tta,
    enable_visualization,
    load_config,
    prepare_distributed,
)
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mokd_mm.checkpoint import CheckpointLoadError


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='save drawn predictions under work_dir/<timestamp>/<show-dir>'
    )
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_model around its model, its "
        'tta_pipeline as the test pipeline (as mmdet and mmpretrain do)',
    )
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load the checkpoint even if its keys do not match the model '
        '(missing weights keep their initialisation)',
    )
    add_common_arguments(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out!r}')
    cfg = load_config(args)
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
    if args.tta:
        enable_tta(cfg)
    prepare_distributed(cfg)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    try:
        runner.load_checkpoint(args.checkpoint, strict=not args.non_strict)
    except CheckpointLoadError:
        raise  # names the file and what is wrong with it
    except RuntimeError as err:  # keys or shapes that do not match the model
        raise RuntimeError(
            f'checkpoint {args.checkpoint!r} does not match the model of {args.config}: '
            f'{err}\nA MoKD config evaluates a distiller checkpoint; an exported student '
            "goes with the student's own config. --non-strict loads it anyway."
        ) from None
    runner.test()


if __name__ == '__main__':
    main()
