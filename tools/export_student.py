"""Write the student of a MoKD checkpoint as a checkpoint of its own.

The output loads into the student's own mmdet / mmpretrain config, so
``tools/test.py <student config> <output>`` (or mmdet's and mmpretrain's own
test tools) evaluates it. It holds plain tensors and metadata only, so it
loads with ``torch.load(weights_only=True)``.

Usage: python tools/export_student.py CHECKPOINT OUT [--no-ema]
"""

import argparse

from mokd_mm.checkpoint import extract_student, load_checkpoint, save_checkpoint_atomic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='a MoKDDistiller checkpoint')
    parser.add_argument('out', help='the student checkpoint to write')
    parser.add_argument(
        '--no-ema',
        action='store_true',
        help='for a run with EMAHook: export the trained weights instead of their '
        'moving average (which MMEngine saves as the state dict, and validation used)',
    )
    args = parser.parse_args()
    student = extract_student(
        load_checkpoint(args.checkpoint), source=args.checkpoint, ema=not args.no_ema
    )
    save_checkpoint_atomic(student, args.out)
    print(f'wrote {len(student["state_dict"])} student tensors of {args.checkpoint} to {args.out}')


if __name__ == '__main__':
    main()
