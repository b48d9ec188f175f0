"""Quality of MoKD on the demo task against its baselines, over seeds.

Every variant trains the demo's ViDT-w16 student (``tools/demo.py``) for the
same iterations from the demo's teacher, validating every
``--val-interval`` iterations on the generated set's val split:

- ``student alone``: ``configs/demo/vidt_swin-w16_shapes.py``;
- ``fixed a=<alpha>``: MoKD's losses with the fixed weighted sum
  ``L_task + alpha * L_distill`` (``configs/mokd/kd-fixed_*``), one run per
  alpha of ``--alphas``;
- ``VkD``: ``configs/mokd/vkd_*`` (its own fixed weights);
- ``MoKD``: ``configs/mokd/mokd_*``.

Nothing is tuned per variant beyond what its config says; seeds go through
``randomness.seed``. The final AP is the validation at the last iteration
(the checkpoint ``tools/test.py`` would evaluate). For every variant the
table also gives, per seed, the first validated iteration whose AP reaches
the best baseline's mean final AP (the best variant other than MoKD).

Usage:
    python benchmarks/demo_quality.py [--iters 300] [--seeds 0 1 2]
        [--alphas 0.25 0.5 1 2 4] [--jobs 2] [--out results.json]
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mokd_mm.utils.tool_runs import (map_concurrently, seconds_per_iter, train,  # noqa: E402
                                     val_curve)

STUDENT = 'configs/demo/vidt_swin-w16_shapes.py'
FIXED = 'configs/mokd/kd-fixed_vidt-w16_vidt-w32_shapes.py'
VKD = 'configs/mokd/vkd_vidt-w16_vidt-w32_shapes.py'
MOKD = 'configs/mokd/mokd_vidt-w16_vidt-w32_shapes.py'


def variants(alphas):
    """``(name, config, options)`` of every variant."""
    yield 'student alone', STUDENT, []
    for alpha in alphas:
        yield f'fixed a={alpha:g}', FIXED, [f'optim_wrapper.weights.distill={alpha}']
    yield 'VkD', VKD, []
    yield 'MoKD', MOKD, []


def first_reaching(curve, target):
    """The first iteration of ``curve`` whose value is >= ``target``."""
    return next((step for step, value in curve if value >= target - 1e-9), None)


def summarize(results):
    """Mean/std of the final APs per variant and the iterations at which
    each seed reaches the best baseline's mean final AP."""
    table = {}
    for name, runs in results.items():
        final = [run['curve'][-1][1] for run in runs]
        final50 = [run['curve50'][-1][1] for run in runs]
        table[name] = dict(
            ap_mean=statistics.mean(final), ap_std=statistics.pstdev(final),
            ap50_mean=statistics.mean(final50), ap50_std=statistics.pstdev(final50),
            seconds_per_iter=statistics.mean(run['seconds_per_iter'] for run in runs))
    baselines = {name: row for name, row in table.items() if name != 'MoKD'}
    best = max(baselines, key=lambda name: baselines[name]['ap_mean'])
    target = table[best]['ap_mean']
    for name, runs in results.items():
        table[name]['iters_to_best_baseline'] = [first_reaching(run['curve'], target)
                                                 for run in runs]
    return dict(best_baseline=best, target_ap=target, variants=table)


def markdown(summary, iters, seeds):
    lines = [
        f'| variant | AP (mean ± std, {len(seeds)} seeds) | AP50 | iterations to reach '
        f'{100 * summary["target_ap"]:.1f} AP ({summary["best_baseline"]}) | s / iter |',
        '|---|---|---|---|---|'
    ]
    for name, row in summary['variants'].items():
        reach = ', '.join('-' if i is None else str(i) for i in row['iters_to_best_baseline'])
        lines.append(
            f'| {name} | {100 * row["ap_mean"]:.1f} ± {100 * row["ap_std"]:.1f} | '
            f'{100 * row["ap50_mean"]:.1f} ± {100 * row["ap50_std"]:.1f} | {reach} | '
            f'{row["seconds_per_iter"]:.3f} |')
    lines.append(f'\n{iters} iterations per run; "-": not reached within them.')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--val-interval', type=int, default=60)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--alphas', type=float, nargs='+', default=[0.25, 0.5, 1, 2, 4])
    parser.add_argument('--teacher', default='work_dirs/demo/teacher.pth',
                        help='the demo\'s teacher (tools/demo.py trains and keeps it)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at a time, each with cores / jobs threads')
    parser.add_argument('--work-dir', default='work_dirs/demo_quality')
    parser.add_argument('--out', help='write the results as json')
    args = parser.parse_args()
    if not osp.isfile(osp.join(REPO, args.teacher)):
        parser.error(f'--teacher {args.teacher} does not exist: run tools/demo.py '
                     'first (it trains and keeps the teacher)')
    if len(args.alphas) < 1 or len(args.seeds) < 1:
        parser.error('give at least one alpha and one seed')
    jobs = [(name, config, options, seed) for name, config, options in variants(args.alphas)
            for seed in args.seeds]
    start = time.time()

    def run(job, env):
        name, config, options, seed = job
        slug = name.replace(' ', '_').replace('=', '')
        work_dir = osp.join(args.work_dir, f'{slug}_seed{seed}')
        options = [f'randomness.seed={seed}', *options]
        if config != STUDENT:
            options.append(f'model.teacher_ckpt={args.teacher}')
        train(REPO, config, work_dir, args.iters, args.val_interval, options,
              label=f'{name} seed {seed}', env=env)
        full = osp.join(REPO, work_dir)
        return dict(variant=name, seed=seed, curve=val_curve(full),
                    curve50=val_curve(full, 'coco/bbox_mAP_50'),
                    seconds_per_iter=seconds_per_iter(full))

    runs = map_concurrently(run, jobs, args.jobs)
    results = {}
    for run_result in runs:
        results.setdefault(run_result['variant'], []).append(run_result)
    summary = summarize(results)
    print(f'\n{len(runs)} runs in {time.time() - start:.0f} s\n')
    print(markdown(summary, args.iters, args.seeds))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), summary=summary, runs=runs), f, indent=1)


if __name__ == '__main__':
    main()
