"""ViDT's forward and forward + backward time in this checkout against an
older revision, side by side in one run.

Each measurement runs in a fresh process in its tree (the older revision in
a temporary worktree, ``benchmarks/revisions.py``), builds the detector from
that tree's ``configs/vidt`` config (random weights, each tree's default
settings) and times it on a random 1 x 3 x H x W image: the raw head outputs
of all levels (``mode='tensor'``), and their sum back-propagated. Rounds
alternate between the trees; the table gives the median over rounds.

Usage:
    python benchmarks/vidt_speed.py --against REV [--variants nano base]
        [--size 800 1333] [--repeats 3] [--rounds 2]
"""

import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import time

from revisions import REPO, checkout, environment  # noqa: E402

CONFIG = 'configs/vidt/vidt_swin-{}_8xb2-50e_coco.py'


def measure(args):
    """In a child process, in the tree to measure: one variant, as JSON."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    import mokd_mm  # noqa: F401

    cfg = Config.fromfile(CONFIG.format(args.measure))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    h, w = args.size
    x = torch.randn(1, 3, h, w)
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), batch_input_shape=(h, w)))]
    result = dict(variant=args.measure)
    for name in ('forward', 'forward+backward'):
        if name == 'forward+backward' and not args.backward:
            continue
        model.train(name != 'forward')
        times = []
        for _ in range(args.repeats + 1):
            start = time.perf_counter()
            if name == 'forward':
                with torch.no_grad():
                    model(x, samples, mode='tensor')
            else:
                cls, box = model(x, samples, mode='tensor')
                (cls.sum() + box.sum()).backward()
                model.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
        result[name] = statistics.median(times[1:])
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--against', help='the older revision')
    parser.add_argument('--variants', nargs='+', default=['nano', 'base'])
    parser.add_argument(
        '--backward-variants',
        nargs='+',
        default=['nano'],
        help='variants also timed with the backward pass',
    )
    parser.add_argument('--size', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--measure', help=argparse.SUPPRESS)
    parser.add_argument('--backward', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args)
    if not args.against:
        parser.error('--against REV is required')

    def child(tree, variant):
        command = [
            sys.executable,
            osp.abspath(__file__),
            '--measure',
            variant,
            '--size',
            *map(str, args.size),
            '--repeats',
            str(args.repeats),
        ]
        if variant in args.backward_variants:
            command.append('--backward')
        result = subprocess.run(
            command, cwd=tree, env=environment(tree), capture_output=True, text=True
        )
        if result.returncode != 0:
            sys.exit(f'{tree}: {variant} failed\n{result.stderr[-3000:]}')
        return json.loads(result.stdout.strip().splitlines()[-1])

    rows = {}
    with checkout(args.against) as old_tree:
        for _ in range(args.rounds):
            for tree, label in ((REPO, 'this checkout'), (old_tree, args.against)):
                for variant in args.variants:
                    rows.setdefault((variant, label), []).append(child(tree, variant))
    print(
        f'ViDT, 1 x 3 x {args.size[0]} x {args.size[1]}, random weights, median of '
        f'{args.repeats} runs, {args.rounds} alternating rounds'
    )
    print(f'| variant | pass | {args.against} s | this checkout s | speed-up |')
    print('|---|---|---|---|---|')
    for variant in args.variants:
        for name in ('forward', 'forward+backward'):
            old = [r[name] for r in rows[(variant, args.against)] if name in r]
            new = [r[name] for r in rows[(variant, 'this checkout')] if name in r]
            if old and new:
                old_s, new_s = statistics.median(old), statistics.median(new)
                print(
                    f'| ViDT-{variant} | {name} | {old_s:.2f} | {new_s:.2f} | {old_s / new_s:.2f} |'
                )


if __name__ == '__main__':
    main()
