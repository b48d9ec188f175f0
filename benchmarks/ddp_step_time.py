"""Step time of a 2-process gloo run (``tools/dist_train.sh``) in this
checkout against an older revision, side by side in one run.

Both trees train the same config (the classification demo pair by default,
with a random teacher) for ``--iters`` iterations with one thread per
process; rounds alternate between the trees. The step time is the mean of
the ``time`` scalar over the iterations after the first fifth.

Usage:
    python benchmarks/ddp_step_time.py --against REV [--config CFG] [--iters 60]
        [--rounds 2] [--procs 2]
"""

import argparse
import glob
import json
import os.path as osp
import socket
import statistics
import subprocess
import sys
import tempfile

from revisions import REPO, checkout, environment  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def step_time(tree, args):
    work_dir = tempfile.mkdtemp(prefix='mokd_ddp_')
    options = [
        f'train_cfg.max_iters={args.iters}',
        'train_cfg.val_interval=100000',
        'model.teacher_ckpt=None',
        f'param_scheduler.0.T_max={args.iters}',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=100000',
    ]
    command = [
        'bash',
        'tools/dist_train.sh',
        args.config,
        str(args.procs),
        '--work-dir',
        work_dir,
        '--cfg-options',
        *options,
    ]
    result = subprocess.run(
        command,
        cwd=tree,
        capture_output=True,
        text=True,
        env=environment(tree, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1'),
    )
    if result.returncode != 0:
        sys.exit(f'{tree}: dist_train.sh failed\n{result.stderr[-3000:]}')
    log = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))[0]
    with open(log) as f:
        times = [r['time'] for r in map(json.loads, f) if 'time' in r]
    return statistics.mean(times[len(times) // 5 :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--against', required=True, help='the older revision')
    parser.add_argument(
        '--config',
        default='configs/mokd/shapes/mokd_resnet18-w16_resnet18-w8_1xb16-300it_shapes.py',
    )
    parser.add_argument(
        '--data-root',
        default='data/shapes_cls',
        help="the config's generated set, made if missing: "
        "'data/shapes_cls', or 'data/shapes_coco' for the detection demo",
    )
    parser.add_argument('--iters', type=int, default=60)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--procs', type=int, default=2)
    args = parser.parse_args()
    from mokd_mm.datasets import make_shape_classification, make_shape_detection

    make = make_shape_detection if 'coco' in args.data_root else make_shape_classification
    make(osp.join(REPO, args.data_root))
    times = {'this checkout': [], args.against: []}
    with checkout(args.against) as old_tree:
        for _ in range(args.rounds):
            times['this checkout'].append(step_time(REPO, args))
            times[args.against].append(step_time(old_tree, args))
    base = statistics.mean(times[args.against])
    print(
        f'{args.config}, {args.procs} processes (gloo), one thread each, {args.iters} '
        f'iterations, {args.rounds} alternating rounds'
    )
    print(f'| tree | s / iter (each round) | mean | x {args.against} |')
    print('|---|---|---|---|')
    for tree, values in times.items():
        print(
            f'| {tree} | {", ".join(f"{v:.3f}" for v in values)} | '
            f'{statistics.mean(values):.3f} | {statistics.mean(values) / base:.2f} |'
        )


if __name__ == '__main__':
    main()
