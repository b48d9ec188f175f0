"""Plot what MoKD did over a run, from its json log (``vis_data/scalars.json``).

Writes into OUT_DIR (default: beside the log):

- ``mokd_pi.png``: every objective's pi, the weight on its ``grad log L``
  (paper, appendix C.3), beside the weight the step applied to its raw
  gradient (``mokd/weight_*``);
- ``mokd_conflict.png``: <g_distill, g_task> and, on its own axis in
  [-1, 1], its cosine (Figure 3a);
- ``mokd_dominance.png``: |g_distill| / |g_task|, log scale (Figure 3b);
- ``mokd_val.png``: the validation metric over training (COCO bbox AP or
  top-1 accuracy, in percent as the demo's table), if the run validated
  more than once, beside that of the runs given with ``--compare`` (e.g.
  the baselines of the same schedule).

Usage: python tools/plot_mokd.py WORK_DIR_OR_SCALARS_JSON [--out-dir DIR]
           [--compare NAME=WORK_DIR ...]
"""

import argparse
import json
import os
import os.path as osp
from typing import Sequence, Tuple

import matplotlib
from runs import find_scalars

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

VAL_METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'accuracy/top1')


def read_series(log: str):
    """Per key, the (step, value) pairs of the log; train records are keyed
    by iteration, validation records by the step they were written at."""
    series = {}
    with open(log) as f:
        for line in f:
            record = json.loads(line)
            step = record.get('iter', record.get('step'))
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ('iter', 'step', 'epoch'):
                    series.setdefault(key, []).append((step, value))
    return series


# Each validation metric, how it is drawn: (label, factor to the table's units).
VAL_UNITS = {
    'coco/bbox_mAP': ('bbox AP (%)', 100.0),
    'coco/bbox_mAP_50': ('bbox AP50 (%)', 100.0),
    'accuracy/top1': ('top-1 accuracy (%)', 1.0),
}


def _figure(path, title, panels):
    """One figure of side-by-side panels; each panel is ``(subtitle,
    curves, ylabel, options)`` with ``curves`` a list of ``(label, points)``
    and options ``log_scale``, ``ylim``, ``zero_line``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5), squeeze=False)
    for ax, (subtitle, curves, ylabel, options) in zip(axes[0], panels):
        for label, points in curves:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
        ax.set_title(subtitle, fontsize=10)
        ax.set_xlabel('iteration')
        ax.set_ylabel(ylabel)
        if options.get('log_scale'):
            ax.set_yscale('log')
        if 'ylim' in options:
            ax.set_ylim(*options['ylim'])
        if options.get('zero_line'):
            ax.axhline(0.0, color='grey', linewidth=0.8)
        if len(curves) > 1:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _by_prefix(series, prefix):
    return [(k[len(prefix) :], series[k]) for k in sorted(series) if k.startswith(prefix)]


def plot(log: str, out_dir: str, compare: Sequence[Tuple[str, str]] = ()):
    """Write the plots; ``compare`` holds ``(name, log)`` of runs whose
    validation curves join MoKD's. Returns the paths written."""
    series = read_series(log)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    pis = _by_prefix(series, 'mokd/pi_')
    if not pis:
        raise KeyError(f'{log} has no mokd/pi_* scalars: not a MoKDOptimWrapper run')
    # pi weighs the gradients of log L; what multiplies each raw gradient is
    # the applied weight. The two can tell different stories (docs/design.md).
    written.append(
        _figure(
            osp.join(out_dir, 'mokd_pi.png'),
            'MoKD weights',
            [
                ("pi: weights on grad log L (the paper's)", pis, 'pi', dict(ylim=(0, 1))),
                (
                    'applied: weights on grad L',
                    _by_prefix(series, 'mokd/weight_'),
                    'weight',
                    dict(ylim=(0, None)),
                ),
            ],
        )
    )
    if 'mokd/conflict' in series:
        written.append(
            _figure(
                osp.join(out_dir, 'mokd_conflict.png'),
                'Gradient conflict (negative: the objectives disagree)',
                [
                    (
                        '<g_distill, g_task>',
                        [('inner product', series['mokd/conflict'])],
                        'inner product',
                        dict(zero_line=True),
                    ),
                    (
                        'cosine',
                        [('cosine', series['mokd/conflict_cos'])],
                        'cosine',
                        dict(ylim=(-1, 1), zero_line=True),
                    ),
                ],
            )
        )
    if 'mokd/dominance' in series:
        written.append(
            _figure(
                osp.join(out_dir, 'mokd_dominance.png'),
                'Gradient dominance',
                [
                    (
                        '|g_distill| / |g_task| (log scale)',
                        [('ratio', series['mokd/dominance'])],
                        'ratio',
                        dict(log_scale=True),
                    )
                ],
            )
        )
    metric = next((m for m in VAL_METRICS if len(series.get(m, [])) > 1), None)
    if metric is not None:
        label, factor = VAL_UNITS[metric]
        curves = [('MoKD', series[metric])]
        for name, other in compare:
            points = read_series(other).get(metric)
            if not points:
                raise KeyError(f'{other} (--compare {name}) has no {metric!r} scalars')
            curves.append((name, points))
        scaled = [(name, [(x, y * factor) for x, y in points]) for name, points in curves]
        written.append(
            _figure(
                osp.join(out_dir, 'mokd_val.png'),
                'Validation',
                [(metric, scaled, label, dict(ylim=(0, None)))],
            )
        )
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('path', help='a work dir or a scalars.json')
    parser.add_argument('--out-dir', help="defaults to the log's directory")
    parser.add_argument(
        '--compare',
        nargs='+',
        default=[],
        metavar='NAME=WORK_DIR',
        help="runs whose validation curves to draw beside MoKD's",
    )
    args = parser.parse_args()
    compare = []
    for item in args.compare:
        name, sep, path = item.partition('=')
        if not sep or not name:
            parser.error(f'--compare takes NAME=WORK_DIR, got {item!r}')
        compare.append((name, find_scalars(path)))
    log = find_scalars(args.path)
    for path in plot(log, args.out_dir or osp.dirname(log), compare):
        print(path)


if __name__ == '__main__':
    main()
