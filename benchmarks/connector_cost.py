"""Forward + backward time of MoKD's indefinite-subspace connector under each
way of keeping its projections orthonormal, side by side in one run.

For every (student, teacher) width pair, one connector per orthogonal map
(same seed) maps a batch of pooled features, a feature loss is
back-propagated, and the median of ``--repeats`` timed passes (after one
warm-up) is reported, relative to the QR retraction
(the default): ``cayley / qr`` is the old default's cost relative to it.

Usage:
    python benchmarks/connector_cost.py [--pairs 512:2048 192:3024 256:256]
        [--maps qr cayley] [--batch 64] [--repeats 5]
"""

import argparse
import statistics
import time

import torch

from mokd_mm.core import IndefiniteSubspaceConnector, StandardizedFeatureLoss


def seconds(student_dim, teacher_dim, orthogonal_map, batch, repeats):
    torch.manual_seed(0)
    connector = IndefiniteSubspaceConnector(student_dim, teacher_dim, orthogonal_map=orthogonal_map)
    loss = StandardizedFeatureLoss()
    s, t = torch.randn(batch, student_dim), torch.randn(batch, teacher_dim)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss(*connector(s, t)).backward()
        times.append(time.perf_counter() - start)
        connector.zero_grad()
    return statistics.median(times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--pairs',
        nargs='+',
        default=['512:2048', '192:3024', '256:256'],
        help='student:teacher widths',
    )
    parser.add_argument('--maps', nargs='+', default=['qr', 'cayley'])
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch '
        f'{args.batch}, median of {args.repeats}'
    )
    print(
        '| student -> teacher (n) | '
        + ' | '.join(f'{m} s' for m in args.maps)
        + ' | '
        + ' | '.join(f'{m} / {args.maps[0]}' for m in args.maps[1:])
        + ' |'
    )
    print('|---' * (2 * len(args.maps)) + '|')
    for pair in args.pairs:
        s_dim, t_dim = (int(v) for v in pair.split(':'))
        row = [seconds(s_dim, t_dim, m, args.batch, args.repeats) for m in args.maps]
        ratios = ' | '.join(f'{v / row[0]:.2f}' for v in row[1:])
        print(
            f'| {s_dim} -> {t_dim} ({s_dim + t_dim}) | '
            + ' | '.join(f'{v:.3f}' for v in row)
            + f' | {ratios} |'
        )


if __name__ == '__main__':
    main()
