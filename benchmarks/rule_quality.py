"""Whether the balancing rules can be told apart: every rule of
``mokd_mm.core`` on a generated classification task with headroom, each run
trained until its validation accuracy stops improving, under the paper's
AdamW recipe and an SGD recipe, over seeds.

Plain PyTorch (``mokd_mm.core`` only): small MLPs on generated vectors, so
that a few hundred runs fit on a CPU. The rules are the objects
``MoKDOptimWrapper`` drives; the loop is the README's plain-PyTorch loop.

Task: ``x ~ N(0, I_32)``; the true class (of 10) is the argmax of a fixed
random two-layer tanh network; every training and validation label is
replaced by a uniformly drawn class with probability ``--noise``, test labels
are the true classes. The teacher (MLP 32-128-128-10) learns from 50,000
samples; the student (MLP 32-32-32-10) from its own 1,000. The teacher's
soft labels carry what the student's few noisy labels do not: headroom.

Objectives, as in the classification configs: ``distill`` = KL(teacher ||
student logits) + the standardized feature distance of the penultimate
features through :class:`IndefiniteSubspaceConnector`; ``task`` = the
cross-entropy.

Stopping: validation every ``--eval-every`` steps; a run stops when its best
validation accuracy has not risen by ``--min-gain`` points over
``--patience`` validations, or at ``--max-steps``; it reports the test
accuracy at its best validation.

Also measured on the same runs (the paper's two measurable claims):
Figure 3, the cosine of the raw task and distillation gradients on the
student's parameters and the dominance ``|g_distill| / |g_task|``, averaged
over the validations; Figure 6, the first validation step at which a rule's
test accuracy reaches the reported accuracy of the best fixed weight (per seed).
And what each rule applied: the ratio of the weights on the raw distillation
and task gradients (the effective ``alpha``), averaged over the validations,
where the update is such a weighted sum; MoKD's final ``pi_distill``.

Usage:
    python -m benchmarks.rule_quality [--seeds 0 1 2 3 4] [--recipes adamw sgd]
        [--rules NAME ...] [--alphas 0.25 0.5 1 2 4 8 16] [--jobs 2] [--out rules.json]
"""

import argparse
import json
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.paired import paired_difference
from mokd_mm.core import (
    DOT,
    IMTLG,
    MGDA,
    CAGrad,
    DynamicWeightAverage,
    FixedWeights,
    GradDrop,
    IndefiniteSubspaceConnector,
    MoKDAmortized,
    MoKDExact,
    PCGrad,
    RandomLossWeighting,
    ScaleInvariant,
    TorchJDBalancer,
    UncertaintyWeighting,
    gradient_diagnostics,
    gram_matrix,
    kl_divergence,
    objective_gradients,
    standardized_feature_distance,
)

NAMES = ['distill', 'task']
DIM, CLASSES, TEACHER_WIDTH, STUDENT_WIDTH = 32, 10, 128, 32

# name -> the balancer, built from the objectives' names.
RULES: Dict[str, Callable[[List[str]], object]] = {
    'MoKD amortized (AdamW, paper)': lambda n: MoKDAmortized(2, n),
    'MoKD amortized (Adam + L2, FAMO)': lambda n: MoKDAmortized(
        2, n, optimizer=dict(type='Adam', lr=0.025, weight_decay=0.01)
    ),
    'MoKD exact (log)': lambda n: MoKDExact(2, n),
    'MoKD exact (famo scale)': lambda n: MoKDExact(2, n, scale='famo'),
    'scale-invariant': lambda n: ScaleInvariant(2, n),
    'uncertainty': lambda n: UncertaintyWeighting(2, n),
    'DWA': lambda n: DynamicWeightAverage(2, n),
    'RLW': lambda n: RandomLossWeighting(2, n),
    'MGDA': lambda n: MGDA(2, n),
    'PCGrad': lambda n: PCGrad(2, n),
    'CAGrad': lambda n: CAGrad(2, n),
    'GradDrop': lambda n: GradDrop(2, n),
    'IMTL-G': lambda n: IMTLG(2, n),
    'DOT': lambda n: DOT(2, n, weight_decay=RECIPES['sgd']['weight_decay']),
    'TorchJD UPGrad': lambda n: TorchJDBalancer(2, n, aggregator=dict(type='UPGrad')),
    'TorchJD Nash-MTL': lambda n: TorchJDBalancer(2, n, aggregator=dict(type='NashMTL')),
}
# DOT is its own momentum: only under SGD (its check_compatible refuses AdamW).
ONLY_UNDER = {'DOT': 'sgd'}

RECIPES = dict(
    adamw=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    sgd=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
)


class MLP(nn.Module):
    """``dim -> width -> width -> classes`` with ReLU; returns the
    penultimate feature (B, width) and the logits (B, classes)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(DIM, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x):
        feat = self.body(x)
        return feat, self.head(feat)


def make_task(noise: float, n_teacher=50_000, n_student=1_000, n_val=2_000, n_test=10_000):
    """The generated task (fixed, seed 0): tensors by split, ``x`` (N, 32)
    float and ``y`` (N,) long."""
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(DIM, 64, generator=g) * 2 / math.sqrt(DIM)
    w2 = torch.randn(64, CLASSES, generator=g)

    def split(n, noisy):
        x = torch.randn(n, DIM, generator=g)
        y = (torch.tanh(x @ w1) @ w2).argmax(1)
        if noisy:
            flip = torch.rand(n, generator=g) < noise
            y = torch.where(flip, torch.randint(0, CLASSES, (n,), generator=g), y)
        return x, y

    return dict(
        teacher=split(n_teacher, True),
        student=split(n_student, True),
        val=split(n_val, True),
        test=split(n_test, False),
    )


def accuracy(model, split) -> float:
    x, y = split
    with torch.no_grad():
        return 100.0 * float((model(x)[1].argmax(1) == y).float().mean())


def train_teacher(task, epochs=30, batch=256) -> MLP:
    torch.manual_seed(0)
    teacher = MLP(TEACHER_WIDTH)
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=1e-3, weight_decay=0.05)
    x, y = task['teacher']
    steps = epochs * (len(x) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(len(x) // batch):
            idx = order[i * batch : (i + 1) * batch]
            F.cross_entropy(teacher(x[idx])[1], y[idx]).backward()
            optimizer.step()
            optimizer.zero_grad()
            schedule.step()
    return teacher.eval()


def run(task, teacher_out, variant: str, recipe: str, seed: int, args) -> Dict:
    """One student run; returns its curve (step, val, test accuracy), the
    reported test accuracy and the gradient diagnostics."""
    torch.manual_seed(seed)
    student = MLP(STUDENT_WIDTH)
    connector = IndefiniteSubspaceConnector(STUDENT_WIDTH, TEACHER_WIDTH)
    alone = variant == 'student alone'
    params = list(student.parameters()) + ([] if alone else list(connector.parameters()))
    optim_cfg = dict(RECIPES[recipe])
    balancer = None
    if variant.startswith('fixed a='):
        balancer = FixedWeights(2, NAMES, weights=dict(distill=float(variant[8:]), task=1.0))
    elif not alone:
        balancer = RULES[variant](NAMES)
    if isinstance(balancer, DOT) and optim_cfg['type'] == 'SGD':  # DOT's momenta and decay
        optim_cfg.update(momentum=0.0, weight_decay=0.0)
    optimizer = getattr(torch.optim, optim_cfg.pop('type'))(params, **optim_cfg)
    if balancer is not None:
        balancer.check_compatible(optimizer)
    x, y = task['student']
    t_feat, t_logits = teacher_out
    student_params = list(student.parameters())

    def objectives(idx):
        feat, logits = student(x[idx])
        lifted_s, lifted_t = connector(feat, t_feat[idx])
        distill = kl_divergence(logits, t_logits[idx]) + standardized_feature_distance(
            lifted_s, lifted_t
        )
        return [distill, F.cross_entropy(logits, y[idx])]

    g = torch.Generator().manual_seed(seed)
    curve, cosines, dominances, alphas = [], [], [], []
    best_val, best_test, best_step, step = -1.0, 0.0, 0, 0
    anchor, since = -math.inf, 0  # the accuracy the last gain of min_gain reached
    while step < args.max_steps and since < args.patience:
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x) - args.batch + 1, args.batch):
            idx = order[start : start + args.batch]
            if alone:
                F.cross_entropy(student(x[idx])[1], y[idx]).backward()
                optimizer.step()
                optimizer.zero_grad()
            else:
                values = balancer.backward(objectives(idx), params)
                optimizer.step()
                optimizer.zero_grad()
                after = None
                if balancer.needs_reevaluation:
                    with torch.no_grad():
                        after = torch.stack(objectives(idx))
                balancer.update(values, after)
            step += 1
            if step % args.eval_every:
                continue
            if not alone:  # Figure 3: the raw gradients on the student
                grads = objective_gradients(objectives(idx), student_params, retain_graph=False)
                diag = gradient_diagnostics(gram_matrix(grads))
                cosines.append(diag['conflict_cos'])
                dominances.append(math.log10(max(diag['dominance'], 1e-12)))
                applied = balancer.log_vars()
                if applied.get('weight_task', 0) > 0:  # the update is a weighted sum
                    alphas.append(applied['weight_distill'] / applied['weight_task'])
            val, test = accuracy(student, task['val']), accuracy(student, task['test'])
            curve.append((step, val, test))
            if val > anchor + args.min_gain:
                anchor, since = val, 0
            else:
                since += 1
            if val > best_val:
                best_val, best_test, best_step = val, test, step
            if step >= args.max_steps or since >= args.patience:
                break
    return dict(
        variant=variant,
        recipe=recipe,
        seed=seed,
        curve=curve,
        test=best_test,
        best_step=best_step,
        steps=step,
        cosine=statistics.mean(cosines) if cosines else None,
        log10_dominance=statistics.mean(dominances) if dominances else None,
        applied_alpha=statistics.mean(alphas) if alphas else None,
        final_pi_distill=balancer.log_vars().get('pi_distill') if balancer else None,
    )


_WORKER = {}


def _init_worker(task, teacher_out):
    torch.set_num_threads(1)
    _WORKER.update(task=task, teacher_out=teacher_out)


def _run_job(job):
    variant, recipe, seed, args = job
    return run(_WORKER['task'], _WORKER['teacher_out'], variant, recipe, seed, args)


def reach_step(curve, target: float) -> Optional[int]:
    """The first step of ``curve`` whose test accuracy is >= ``target``."""
    return next((step for step, _, test in curve if test >= target), None)


def summarize(runs: List[Dict]) -> Dict:
    """Per recipe: every variant's mean and std over seeds and its paired
    differences (mean and 95% interval) to the best fixed weight and to the
    median one; the gradient diagnostics of each rule against fixed a=1;
    the step at which each rule reaches the best fixed weight's final
    accuracy."""
    out = {}
    for recipe in sorted({r['recipe'] for r in runs}):
        by_variant: Dict[str, Dict[int, Dict]] = {}
        for r in runs:
            if r['recipe'] == recipe:
                by_variant.setdefault(r['variant'], {})[r['seed']] = r

        def tests(name):
            return {s: r['test'] for s, r in by_variant[name].items()}

        fixed = sorted(
            (n for n in by_variant if n.startswith('fixed a=')),
            key=lambda n: statistics.mean(tests(n).values()),
        )
        best, median = fixed[-1], fixed[(len(fixed) - 1) // 2]
        variants = {}
        for name, seeds in by_variant.items():
            values = list(tests(name).values())
            row = dict(
                mean=statistics.mean(values),
                std=statistics.stdev(values) if len(values) > 1 else float('nan'),
                to_best=paired_difference(tests(name), tests(best)),
                to_median=paired_difference(tests(name), tests(median)),
                steps=statistics.median(r['steps'] for r in seeds.values()),
            )
            if name != 'student alone' and 'fixed a=1' in by_variant:
                for key in ('cosine', 'log10_dominance'):
                    mine = {s: r[key] for s, r in seeds.items()}
                    ref = {s: r[key] for s, r in by_variant['fixed a=1'].items()}
                    row[key] = statistics.mean(mine.values())
                    row[f'{key}_to_a1'] = paired_difference(mine, ref)
            reached = [
                reach_step(r['curve'], by_variant[best][s]['test'])
                for s, r in seeds.items()
                if s in by_variant[best]
            ]
            row['reaches_best'] = reached
            for key in ('applied_alpha', 'final_pi_distill'):
                measured = [r[key] for r in seeds.values() if r.get(key) is not None]
                row[key] = statistics.mean(measured) if measured else None
            variants[name] = row
        out[recipe] = dict(best=best, median=median, variants=variants)
    return out


def _interval(diff) -> str:
    mean, low, high = diff
    return f'{mean:+.1f} [{low:+.1f}, {high:+.1f}]'


def markdown(summary: Dict, seeds) -> str:
    parts = []
    for recipe, table in summary.items():
        best, median = table['best'], table['median']
        lines = [
            f'**{recipe}** (best fixed weight: {best}; median: {median})',
            '',
            f'| variant | test accuracy % (mean ± std, {len(seeds)} seeds) | to {best} '
            f'[95% CI] | to {median} [95% CI] | steps (median) | reaches {best} '
            '(step per seed) | cos(g_distill, g_task) | log10 dominance | applied alpha '
            '| final pi_distill |',
            '|---|---|---|---|---|---|---|---|---|---|',
        ]
        for name, row in sorted(table['variants'].items(), key=lambda kv: -kv[1]['mean']):
            reached = ', '.join('-' if s is None else str(s) for s in row['reaches_best'])
            cos = f'{row["cosine"]:+.2f}' if 'cosine' in row else ''
            dom = f'{row["log10_dominance"]:+.2f}' if 'log10_dominance' in row else ''
            alpha, pi = (row[k] for k in ('applied_alpha', 'final_pi_distill'))
            lines.append(
                f'| {name} | {row["mean"]:.1f} ± {row["std"]:.1f} | '
                f'{"-" if name == best else _interval(row["to_best"])} | '
                f'{"-" if name == median else _interval(row["to_median"])} | '
                f'{row["steps"]:.0f} | {reached} | {cos} | {dom} | '
                f'{"" if alpha is None else f"{alpha:.2f}"} | {"" if pi is None else f"{pi:.2f}"} |'
            )
        parts.append('\n'.join(lines))
    return '\n\n'.join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--recipes', nargs='+', choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument('--rules', nargs='+', choices=list(RULES), default=list(RULES))
    parser.add_argument('--alphas', type=float, nargs='+', default=[0.25, 0.5, 1, 2, 4, 8, 16])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--noise', type=float, default=0.3, help='label noise')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--eval-every', type=int, default=50)
    parser.add_argument('--patience', type=int, default=8, help='validations')
    parser.add_argument('--min-gain', type=float, default=0.5, help='accuracy points')
    parser.add_argument('--max-steps', type=int, default=8000)
    parser.add_argument('--jobs', type=int, default=os.cpu_count(), help='runs at a time')
    parser.add_argument('--out', help='write the runs and the summary as json')
    args = parser.parse_args()

    start = time.time()
    task = make_task(args.noise)
    teacher = train_teacher(task)
    with torch.no_grad():
        teacher_out = tuple(t.detach() for t in teacher(task['student'][0]))
    print(
        f'teacher: test {accuracy(teacher, task["test"]):.1f}%, '
        f'val {accuracy(teacher, task["val"]):.1f}% ({time.time() - start:.0f} s)',
        flush=True,
    )
    variants = ['student alone', *[f'fixed a={a:g}' for a in args.alphas], *args.rules]
    jobs = [
        (variant, recipe, seed, args)
        for recipe in args.recipes
        for variant in variants
        if ONLY_UNDER.get(variant, recipe) == recipe
        for seed in args.seeds
    ]
    runs = []
    with ProcessPoolExecutor(
        args.jobs, initializer=_init_worker, initargs=(task, teacher_out)
    ) as pool:
        for result in pool.map(_run_job, jobs):
            runs.append(result)
            print(
                f'[{time.time() - start:5.0f} s] {result["recipe"]} {result["variant"]} '
                f'seed {result["seed"]}: {result["test"]:.1f}% at step {result["best_step"]} '
                f'of {result["steps"]}',
                flush=True,
            )
    summary = summarize(runs)
    print(f'\n{len(runs)} runs in {time.time() - start:.0f} s\n')
    print(markdown(summary, args.seeds))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), summary=summary, runs=runs), f, indent=1)


if __name__ == '__main__':
    main()
