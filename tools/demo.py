"""The built-in demo: MoKD end to end on a generated COCO-format detection set.

Steps (each one a run of this repository's tools and configs, printed before
it runs; full logs go to each work directory's ``*_console.log``):

1. generate the shape detection set under ``data/shapes_coco`` (once);
2. train the teacher, a small ViDT (``configs/demo/vidt_swin-w32_shapes.py``;
   kept as ``WORK_DIR/teacher.pth`` for the next run);
3. train the student, a smaller ViDT (``configs/demo/vidt_swin-w16_shapes.py``)
   alone, distil it with ViDT's token matching under fixed weights and with
   MoKD, all for the same iterations, validating along the way; ``--jobs``
   runs at a time, each with ``--threads / --jobs`` threads;
4. evaluate every model with ``tools/test.py`` (COCO bbox metrics), print a
   comparison table and plot MoKD's weights, gradient conflict and
   dominance and every student's AP over training
   (``tools/plot_mokd.py``).

Every run has a fixed number of threads and torch's CPU code paths pinned
to AVX2 (``tools/runs.py``, :func:`cpu_env`), so that the same command gives
the same table on another machine: the training runs are chaotic, and the
rounding of AVX-512 instead of AVX2, or of one thread instead of two,
moves the teacher's AP by several points.

Usage: python tools/demo.py [--iters N] [--teacher-iters N] [--jobs N] [--threads N]
[--native-code-paths] [--seed S] [--work-dir DIR]
"""

import argparse
import os.path as osp
import time

from runs import (
    can_pin_code_paths,
    cpu_env,
    ensure_teacher,
    map_concurrently,
    run_tool,
    seconds_per_iter,
    student_parameters,
    test,
    train,
)

from mokd_mm.datasets import make_shape_detection

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEACHER = 'configs/demo/vidt_swin-w32_shapes.py'
STUDENT = 'configs/demo/vidt_swin-w16_shapes.py'
RUNS = (
    ('student alone', STUDENT),
    (
        'token matching, fixed',
        'configs/mokd/shapes/token-matching_vidt-w32_vidt-w16_1xb8-300it_shapes.py',
    ),
    ('MoKD', 'configs/mokd/shapes/mokd_vidt-w32_vidt-w16_1xb8-300it_shapes.py'),
)
# The order the student runs start in: MoKD, the slowest (its same-batch
# re-evaluation is a second forward pass), first, so that with two jobs the
# two baselines run one after the other beside it.
START_ORDER = ('MoKD', 'student alone', 'token matching, fixed')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=300, help='student iterations')
    parser.add_argument('--teacher-iters', type=int, default=600)
    parser.add_argument(
        '--evals',
        type=int,
        default=3,
        help='validations during each student run (for the AP curves)',
    )
    parser.add_argument(
        '--jobs',
        type=int,
        default=2,
        help='student runs (and evaluations) at a time, each with threads / jobs threads',
    )
    parser.add_argument(
        '--threads',
        type=int,
        default=2,
        help="the teacher run's threads (the README's table: 2). Fixed rather than "
        "the machine's core count, because the results depend on it",
    )
    parser.add_argument(
        '--native-code-paths',
        action='store_true',
        help="let torch use the CPU's widest instructions (AVX-512, AMX) instead of "
        'AVX2; the results then differ from one CPU to another',
    )
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help="the students' seed (randomness.seed): the spread of their results over seeds",
    )
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    start = time.time()
    pin = not args.native_code_paths and can_pin_code_paths()
    teacher_env = cpu_env(args.threads, pin)
    student_env = cpu_env(max(1, args.threads // args.jobs), pin)
    student_threads = student_env['OMP_NUM_THREADS']
    print(
        f'{args.threads} threads for the teacher, {student_threads} for each student run; '
        + (
            'CPU code paths pinned to AVX2, so Intel CPUs with AVX2 give the same numbers'
            if pin
            else "the CPU's own code paths: numbers differ from one CPU to another"
        ),
        flush=True,
    )

    def stage(text):
        print(f'\n[{time.time() - start:5.0f} s] {text}', flush=True)

    stage('1/4 data: data/shapes_coco')
    make_shape_detection(osp.join(REPO, 'data/shapes_coco'))

    stage('2/4 teacher')
    teacher_ckpt = ensure_teacher(
        REPO, TEACHER, osp.join(args.work_dir, 'teacher.pth'), args.teacher_iters, teacher_env
    )
    teacher_dir = osp.join(args.work_dir, 'teacher')

    stage(f'3/4 students, {args.iters} iterations each, {args.jobs} at a time')
    val_interval = max(1, args.iters // max(1, args.evals))

    def train_student(name, env):
        config = dict(RUNS)[name]
        work_dir = osp.join(args.work_dir, osp.splitext(osp.basename(config))[0])
        options = [f'randomness.seed={args.seed}']
        if config != STUDENT:
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
        ckpt = train(REPO, config, work_dir, args.iters, val_interval, options, label=name, env=env)
        return name, config, ckpt, work_dir, options

    trained = {
        run[0]: run for run in map_concurrently(train_student, START_ORDER, args.jobs, student_env)
    }
    runs = [('teacher', TEACHER, teacher_ckpt, teacher_dir, [])]
    runs += [trained[name] for name, _ in RUNS]

    stage('4/4 evaluation with tools/test.py')

    def evaluate(run, env):
        name, config, ckpt, work_dir, options = run
        metrics = test(REPO, config, ckpt, osp.join(work_dir, 'test'), options, label=name, env=env)
        try:
            speed = seconds_per_iter(osp.join(REPO, work_dir))
        except FileNotFoundError:  # a teacher.pth put there, not trained in this folder
            speed = float('nan')
        return (
            name,
            metrics['coco/bbox_mAP'],
            metrics['coco/bbox_mAP_50'],
            student_parameters(osp.join(REPO, ckpt)),
            speed,
        )

    rows = map_concurrently(evaluate, runs, args.jobs, student_env)

    mokd_dir = runs[-1][3]
    baselines = [f'{name}={work_dir}' for name, _, _, work_dir, _ in runs[1:-1]]
    run_tool(
        REPO,
        ['tools/plot_mokd.py', mokd_dir, '--out-dir', mokd_dir, '--compare', *baselines],
        osp.join(REPO, mokd_dir, 'plot_console.log'),
        'plots',
    )

    stage('done')
    print(
        f'\nShape detection (data/shapes_coco val, 128 images), ViDT-w16 student, '
        f'{args.iters} iterations; {time.time() - start:.0f} s in all'
    )
    print(f'| {"model":<22} | {"AP":>5} | {"AP50":>5} | {"params":>9} | {"s / iter":>8} |')
    print(f'|{"-" * 24}|{"-" * 7}|{"-" * 7}|{"-" * 11}|{"-" * 10}|')
    for name, ap, ap50, params, speed in rows:
        speed_text = '-' if speed != speed else f'{speed:.3f}'
        print(
            f'| {name:<22} | {100 * ap:>5.1f} | {100 * ap50:>5.1f} | {params:>9,} | '
            f'{speed_text:>8} |'
        )
    print(
        f's / iter: the teacher alone with {args.threads} threads, the students '
        f'{args.jobs} at a time with {student_threads} each.'
    )
    print(
        f'\nLogs, checkpoints and scalars (mokd/pi_*, mokd/conflict, mokd/dominance, '
        f'coco/bbox_mAP) are under {args.work_dir}/; the plots are {mokd_dir}/mokd_*.png.'
    )


if __name__ == '__main__':
    main()
