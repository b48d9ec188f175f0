"""Quality of every loss balancer on the demo tasks, over seeds, against the
best of a grid of fixed weights.

Each variant trains the demo student from the demo teacher for the same
iterations with ``tools/train.py`` and reports its final validation metric
(the last validation, i.e. the checkpoint ``tools/test.py`` would evaluate):

- ``student alone``: the student's own config;
- ``fixed a=<alpha>``: MoKD's losses summed as ``L_task + alpha L_distill``
  (``FixedWeights``), one run per alpha of ``--alphas``;
- one variant per balancer of ``--rules`` (``mokd_mm.core.balancers``) on
  the same losses, each at its published defaults;
- ``VkD`` (detection): ViDT's VkD baseline with its own fixed weights.

Tasks: ``classification``, the ResNet-18 width-8 student of a width-16
teacher on the generated shape classification set (top-1 accuracy, %), and
``detection``, the ViDT-w16 student of ``tools/demo.py`` (COCO bbox AP, %).
A missing teacher is trained first and kept. Seeds go through
``randomness.seed``, so every variant of a seed starts from the same
student and sees the same batches: the table gives each variant's mean and
its paired difference to the fixed weight with the best mean, with a 95%
confidence interval (Student's t over the seeds).

Usage:
    python -m benchmarks.demo_quality --task classification [--seeds 0 1 2 3 4]
        [--rules NAME ...] [--alphas 0.25 0.5 1 2 4] [--jobs 2] [--out results.json]
"""

import argparse
import json
import os.path as osp
import statistics
import time

from benchmarks.paired import paired_difference
from tools.runs import ensure_teacher, map_concurrently, seconds_per_iter, train, val_curve

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TASKS = dict(
    classification=dict(
        data=('make_shape_classification', 'data/shapes_cls'),
        student='configs/demo/resnet18-w8_shapes.py',
        teacher='configs/demo/resnet18-w16_shapes.py',
        teacher_ckpt='work_dirs/demo_cls/teacher.pth',
        teacher_iters=1000,
        distiller='configs/mokd/shapes/mokd_resnet18-w16_resnet18-w8_1xb16-300it_shapes.py',
        vkd=None,
        metric='accuracy/top1',
        percent=1.0,
        iters=300,
        val_interval=100,
    ),
    detection=dict(
        data=('make_shape_detection', 'data/shapes_coco'),
        student='configs/demo/vidt_swin-w16_shapes.py',
        teacher='configs/demo/vidt_swin-w32_shapes.py',
        teacher_ckpt='work_dirs/demo/teacher.pth',
        teacher_iters=600,
        distiller='configs/mokd/shapes/mokd_vidt-w32_vidt-w16_1xb8-300it_shapes.py',
        vkd='configs/mokd/shapes/vkd_vidt-w32_vidt-w16_1xb8-300it_shapes.py',
        metric='coco/bbox_mAP',
        percent=100.0,
        iters=300,
        val_interval=60,
    ),
)

_ADAM_L2 = [
    'optim_wrapper.balancer.optimizer.type=Adam',
    'optim_wrapper.balancer.optimizer.lr=0.025',
    'optim_wrapper.balancer.optimizer.weight_decay=0.01',
]
# Balancer variants: name -> the cfg-options that select it on the
# distiller config (whose balancer is MoKDAmortized).
RULES = {
    'MoKD amortized (AdamW, paper)': [],
    'MoKD amortized (Adam + L2, FAMO)': _ADAM_L2,
    'MoKD exact': ['optim_wrapper.balancer.type=MoKDExact'],
    'scale-invariant': ['optim_wrapper.balancer.type=ScaleInvariant'],
    'uncertainty': ['optim_wrapper.balancer.type=UncertaintyWeighting'],
    'DWA': ['optim_wrapper.balancer.type=DynamicWeightAverage'],
    'RLW': ['optim_wrapper.balancer.type=RandomLossWeighting'],
    'MGDA': ['optim_wrapper.balancer.type=MGDA'],
    'PCGrad': ['optim_wrapper.balancer.type=PCGrad'],
    'CAGrad': ['optim_wrapper.balancer.type=CAGrad'],
    'GradDrop': ['optim_wrapper.balancer.type=GradDrop'],
    'IMTL-G': ['optim_wrapper.balancer.type=IMTLG'],
}


def variants(task, alphas, rules):
    """``(name, config, options)`` of every variant of ``task``."""
    yield 'student alone', task['student'], []
    for alpha in alphas:
        yield (
            f'fixed a={alpha:g}',
            task['distiller'],
            [
                'optim_wrapper.balancer.type=FixedWeights',
                f'optim_wrapper.balancer.weights.distill={alpha}',
                'optim_wrapper.balancer.weights.task=1.0',
            ],
        )
    if task['vkd']:
        yield 'VkD', task['vkd'], []
    for rule in rules:
        yield rule, task['distiller'], RULES[rule]


def summarize(results, percent):
    """Per variant: mean and std of the final metric over seeds, and the
    paired difference (mean, 95% CI) to the best fixed weighting."""
    final = {
        name: {run['seed']: percent * run['curve'][-1][1] for run in runs}
        for name, runs in results.items()
    }
    fixed = [name for name in final if name.startswith('fixed')]
    reference = max(fixed, key=lambda name: statistics.mean(final[name].values()))
    table = {}
    for name, by_seed in final.items():
        values = list(by_seed.values())
        diff, low, high = paired_difference(by_seed, final[reference])
        table[name] = dict(
            mean=statistics.mean(values),
            std=statistics.pstdev(values),
            by_seed=by_seed,
            diff=diff,
            ci=(low, high),
            seconds_per_iter=statistics.mean(r['seconds_per_iter'] for r in results[name]),
        )
    return dict(reference=reference, variants=table)


def markdown(summary, metric, seeds):
    ref = summary['reference']
    lines = [
        f'| variant | {metric} (mean ± std, {len(seeds)} seeds) | paired difference to '
        f'{ref} [95% CI] | s / iter |',
        '|---|---|---|---|',
    ]
    for name, row in sorted(summary['variants'].items(), key=lambda kv: -kv[1]['mean']):
        low, high = row['ci']
        diff = '-' if name == ref else f'{row["diff"]:+.1f} [{low:+.1f}, {high:+.1f}]'
        lines.append(
            f'| {name} | {row["mean"]:.1f} ± {row["std"]:.1f} | {diff} | '
            f'{row["seconds_per_iter"]:.3f} |'
        )
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=list(TASKS), default='classification')
    parser.add_argument('--rules', nargs='+', choices=list(RULES), default=list(RULES))
    parser.add_argument('--alphas', type=float, nargs='+', default=[0.25, 0.5, 1, 2, 4])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--iters', type=int, help="student iterations (the task's default)")
    parser.add_argument(
        '--jobs', type=int, default=2, help='runs at a time, each with cores / jobs threads'
    )
    parser.add_argument('--work-dir', help='default: work_dirs/quality_<task>')
    parser.add_argument('--out', help='write the results as json')
    args = parser.parse_args()
    task = TASKS[args.task]
    iters = args.iters or task['iters']
    work_root = args.work_dir or f'work_dirs/quality_{args.task}'
    from mokd_mm import datasets

    maker, data_root = task['data']
    getattr(datasets, maker)(osp.join(REPO, data_root))
    teacher = ensure_teacher(REPO, task['teacher'], task['teacher_ckpt'], task['teacher_iters'])
    jobs = [
        (name, config, options, seed)
        for name, config, options in variants(task, args.alphas, args.rules)
        for seed in args.seeds
    ]
    start = time.time()

    def run(job, env):
        name, config, options, seed = job
        slug = ''.join(c if c.isalnum() else '_' for c in name)
        work_dir = osp.join(work_root, f'{slug}_seed{seed}')
        options = [f'randomness.seed={seed}', *options]
        if config != task['student']:
            options.append(f'model.teacher_ckpt={teacher}')
        train(
            REPO,
            config,
            work_dir,
            iters,
            task['val_interval'],
            options,
            label=f'{name} seed {seed}',
            env=env,
        )
        full = osp.join(REPO, work_dir)
        return dict(
            variant=name,
            seed=seed,
            curve=val_curve(full, task['metric']),
            seconds_per_iter=seconds_per_iter(full),
        )

    runs = map_concurrently(run, jobs, args.jobs)
    results = {}
    for result in runs:
        results.setdefault(result['variant'], []).append(result)
    summary = summarize(results, task['percent'])
    print(f'\n{len(runs)} runs of {iters} iterations in {time.time() - start:.0f} s\n')
    print(markdown(summary, task['metric'], args.seeds))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), summary=summary, runs=runs), f, indent=1)


if __name__ == '__main__':
    main()
