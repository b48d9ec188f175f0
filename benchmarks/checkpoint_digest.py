"""The cost of the checkpoint digest: saving and loading a checkpoint of
``--mb`` megabytes with and without it, side by side in one run.

Saving: ``torch.save`` into memory and the atomic write, without and with
the SHA-256 seal (``mokd_mm.checkpoint.digest.seal``). Loading:
``torch.load(weights_only=True)`` of the file, without and with the digest
check first (``mokd_mm.checkpoint.load_checkpoint`` does both). Each time is
the median of ``--repeats`` runs; the files live in ``--dir`` (default: a
temporary directory).

Usage: python benchmarks/checkpoint_digest.py [--mb 100] [--repeats 5] [--dir DIR]
"""

import argparse
import io
import os
import statistics
import tempfile
import time

import torch

from mokd_mm.checkpoint import atomic_write, load_checkpoint
from mokd_mm.checkpoint.digest import seal


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mb', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--dir', default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    floats = args.mb * 2**20 // 4 // 64  # 64 float32 tensors
    checkpoint = dict(state_dict={f'layer{i}': torch.randn(floats) for i in range(64)})
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        plain, sealed = os.path.join(directory, 'plain.pth'), os.path.join(directory, 'sealed.pth')

        def save(path, digest):
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            data = buffer.getvalue()
            atomic_write(path, seal(data) if digest else data)

        results = {
            'save without digest': _median_seconds(lambda: save(plain, False), args.repeats),
            'save with digest': _median_seconds(lambda: save(sealed, True), args.repeats),
            'load without digest check': _median_seconds(
                lambda: torch.load(plain, weights_only=True), args.repeats
            ),
            'load with digest check': _median_seconds(
                lambda: load_checkpoint(sealed), args.repeats
            ),
        }
        size = os.path.getsize(sealed) / 2**20
    print(f'checkpoint of {size:.1f} MiB, median of {args.repeats} runs')
    for name, seconds in results.items():
        print(f'  {name:28s} {seconds:.3f} s')
    save_ratio = results['save with digest'] / results['save without digest']
    load_ratio = results['load with digest check'] / results['load without digest check']
    print(f'  with / without: save {save_ratio:.2f}x, load {load_ratio:.2f}x')


if __name__ == '__main__':
    main()
