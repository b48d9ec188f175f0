"""The built-in demo: MoKD end to end on a generated image set.

Steps (each one a command of this repository, printed before it runs):

1. generate the shape classification set under ``data/shapes_cls`` (once);
2. train the teacher, a ResNet-18 of width 16 (kept in ``work_dirs/demo`` for
   the next run);
3. train the student (the same network at width 8) alone, distil it with the
   fixed-weight baseline and with MoKD, all for the same iterations;
4. evaluate every model with ``tools/test.py``, print a comparison table,
   and plot MoKD's weights and gradient diagnostics
   (``tools/analysis/plot_mokd.py``).

Usage: python tools/demo.py [--iters N] [--work-dir DIR]
"""
import argparse
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time

import torch

from mokd_mm.datasets import make_shape_classification

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEACHER = 'configs/demo/resnet18-w16_shapes.py'
STUDENT = 'configs/demo/resnet18-w8_shapes.py'
RUNS = (
    ('student alone', STUDENT),
    ('KD, fixed weights', 'configs/mokd/kd-fixed_resnet18-w8_resnet18-w16_shapes.py'),
    ('MoKD (amortized)', 'configs/mokd/mokd_resnet18-w8_resnet18-w16_shapes.py'),
)


def run(args):
    print('$ ' + ' '.join(shlex.quote(a) for a in args), flush=True)
    subprocess.run(args, cwd=REPO, check=True)


def capture(args) -> str:
    print('$ ' + ' '.join(shlex.quote(a) for a in args), flush=True)
    out = subprocess.run(args, cwd=REPO, check=True, capture_output=True, text=True)
    return out.stdout + out.stderr


def train(config, work_dir, iters, *options):
    run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
         f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
         f'param_scheduler.0.T_max={iters}', f'default_hooks.checkpoint.interval={iters}',
         f'default_hooks.logger.interval={max(1, min(20, iters // 5))}', *options])
    return osp.join(work_dir, f'iter_{iters}.pth')


def evaluate(config, checkpoint, work_dir, *options) -> float:
    extra = ['--cfg-options', *options] if options else []
    out = capture([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir,
                   *extra])
    return float(out.split('accuracy/top1: ')[-1].split()[0])


def seconds_per_iter(work_dir) -> float:
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    with open(logs[-1]) as f:
        times = [json.loads(line)['time'] for line in f if '"time"' in line and '"lr"' in line]
    times = times[len(times) // 5:]  # skip the warm-up
    return sum(times) / len(times) if times else float('nan')


def student_parameters(checkpoint) -> int:
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    has_prefix = any(k.startswith('student.') for k in state)
    return sum(v.numel() for k, v in state.items()
               if (k.startswith('student.') or not has_prefix) and v.is_floating_point()
               and 'running_' not in k)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=150, help='student iterations')
    parser.add_argument('--teacher-iters', type=int, default=300)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    start = time.time()

    print('[1/4] data', flush=True)
    make_shape_classification(osp.join(REPO, 'data/shapes_cls'))

    print('[2/4] teacher', flush=True)
    teacher_ckpt = osp.join(args.work_dir, 'teacher.pth')
    if not osp.exists(osp.join(REPO, teacher_ckpt)):
        last = train(TEACHER, osp.join(args.work_dir, 'teacher'), args.teacher_iters)
        os.replace(osp.join(REPO, last), osp.join(REPO, teacher_ckpt))
    else:
        print(f'reusing {teacher_ckpt}', flush=True)

    print('[3/4] students', flush=True)
    results = [('teacher', TEACHER, teacher_ckpt, osp.join(args.work_dir, 'teacher'), [])]
    for name, config in RUNS:
        work_dir = osp.join(args.work_dir, osp.splitext(osp.basename(config))[0])
        options = [] if config == STUDENT else [f'model.teacher_ckpt={teacher_ckpt}']
        ckpt = train(config, work_dir, args.iters, *options)
        results.append((name, config, ckpt, work_dir, options))

    print('[4/4] evaluation', flush=True)
    rows = []
    for name, config, ckpt, work_dir, options in results:
        acc = evaluate(config, ckpt, osp.join(work_dir, 'test'), *options)
        speed = seconds_per_iter(osp.join(REPO, work_dir)) if osp.isdir(
            osp.join(REPO, work_dir)) and name != 'teacher' else float('nan')
        rows.append((name, acc, student_parameters(osp.join(REPO, ckpt)), speed))

    print(f'\nShape classification, {args.iters} student iterations '
          f'({time.time() - start:.0f} s in all)')
    print(f'| {"model":<20} | {"top-1 (%)":>9} | {"params":>9} | {"s / iter":>8} |')
    print(f'|{"-" * 22}|{"-" * 11}|{"-" * 11}|{"-" * 10}|')
    for name, acc, params, speed in rows:
        speed_text = '-' if speed != speed else f'{speed:.3f}'
        print(f'| {name:<20} | {acc:>9.1f} | {params:>9,} | {speed_text:>8} |')
    mokd_dir = results[-1][3]
    run([sys.executable, 'tools/analysis/plot_mokd.py', mokd_dir, '--out-dir', mokd_dir])
    print(f'\nLogs, checkpoints and scalars (mokd/pi_*, mokd/conflict, mokd/dominance) '
          f'are under {args.work_dir}/; the plots are {mokd_dir}/mokd_*.png.')


if __name__ == '__main__':
    main()
