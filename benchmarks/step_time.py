"""Step time and peak memory of a distillation step under every loss
balancer, against the fixed-weight step of the same distiller, side by side
in one run.

For each variant (a balancer of ``mokd_mm.core.balancers``; ``fixed`` is
the weighted sum of eq. 3) a fresh process builds the distiller from CONFIG
(random teacher weights), runs ``--warmup`` then ``--steps`` training steps
on a synthetic batch of the config's input size, and reports the mean step
time and the peak memory (CUDA: allocated bytes; CPU: the process's peak
resident size). Ratios are relative to ``fixed``.

Usage:
    python benchmarks/step_time.py CONFIG [--batch B] [--size H W] [--steps N]
        [--device cuda|cpu] [--amp] [--variants NAME ...] [--out results.json]
"""

import argparse
import json
import os.path as osp
import resource
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
VARIANTS = {
    'fixed': dict(type='FixedWeights'),
    'MoKD amortized, same batch': dict(type='MoKDAmortized'),
    'MoKD amortized, next batch': dict(type='MoKDAmortized', update='next_batch'),
    'MoKD exact': dict(type='MoKDExact'),
    'scale-invariant': dict(type='ScaleInvariant'),
    'uncertainty': dict(type='UncertaintyWeighting'),
    'DWA': dict(type='DynamicWeightAverage'),
    'RLW': dict(type='RandomLossWeighting'),
    'MGDA': dict(type='MGDA'),
    'PCGrad': dict(type='PCGrad'),
    'CAGrad': dict(type='CAGrad'),
    'GradDrop': dict(type='GradDrop'),
    'IMTL-G': dict(type='IMTLG'),
    'DOT': dict(type='DOT'),
    'TorchJD UPGrad': dict(type='TorchJDBalancer', aggregator=dict(type='UPGrad')),
    'TorchJD Nash-MTL': dict(type='TorchJDBalancer', aggregator=dict(type='NashMTL')),
}
# DOT is the momenta: the model's SGD runs without its own (and DOT takes the
# weight decay).
PLAIN_SGD = ('DOT',)


def synthetic_batch(cfg, batch, size, num_classes):
    """A batch in the layout the config's data preprocessor takes."""
    import torch

    h, w = size
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for _ in range(batch)]
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        samples = []
        for i in range(batch):
            sample = DetDataSample(
                metainfo=dict(img_id=i, img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0))
            )
            xy = torch.rand(8, 2) * torch.tensor([w, h]) * 0.6
            wh = (torch.rand(8, 2) * 0.3 + 0.05) * torch.tensor([w, h])
            sample.gt_instances = InstanceData(
                bboxes=torch.cat([xy, xy + wh], 1), labels=torch.randint(0, num_classes, (8,))
            )
            samples.append(sample)
    else:
        from mmpretrain.structures import DataSample

        samples = [
            DataSample().set_gt_label(int(torch.randint(0, num_classes, ()))) for _ in range(batch)
        ]
    return dict(inputs=inputs, data_samples=samples)


def measure(args, variant):
    """Runs in a child process: one variant, printed as JSON."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, DefaultScope

    import mokd_mm  # noqa: F401

    cfg = Config.fromfile(args.config)
    model_cfg = cfg.model.to_dict()
    model_cfg['teacher_ckpt'] = None
    if 'data_preprocessor' in cfg:
        model_cfg['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    wrapper_cfg = cfg.optim_wrapper.to_dict()
    wrapper_cfg.update(balancer=dict(VARIANTS[variant]), diagnostics_interval=0)
    if variant in PLAIN_SGD:
        optimizer = wrapper_cfg['optimizer']
        wrapper_cfg['balancer'].update(
            momentum=optimizer.pop('momentum', 0.9) or 0.9,
            weight_decay=optimizer.pop('weight_decay', 0.0),
        )
        optimizer.update(type='SGD', momentum=0.0, weight_decay=0.0)
    if args.amp:
        wrapper_cfg['dtype'] = 'float16'
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        model = MODELS.build(model_cfg).to(args.device).train()
        wrapper = build_optim_wrapper(model, wrapper_cfg)
    head = getattr(model.student, 'bbox_head', None) or model.student.head
    batch = synthetic_batch(cfg, args.batch, args.size, head.num_classes)
    sync = torch.cuda.synchronize if args.device == 'cuda' else (lambda: None)
    for _ in range(args.warmup):
        model.train_step(batch, wrapper)
    sync()
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_step(batch, wrapper)
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    if args.device == 'cuda':
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(json.dumps(dict(variant=variant, seconds=seconds, peak_mib=peak)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true', help='float16 autocast and loss scaling')
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help='the variants to time (fixed is always first)',
    )
    parser.add_argument('--variant', help=argparse.SUPPRESS)
    parser.add_argument('--out', help='also write the results as JSON')
    args = parser.parse_args()
    if args.variant:
        return measure(args, args.variant)

    rows = []
    for variant in ['fixed'] + [v for v in args.variants if v != 'fixed']:
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], '--variant', variant],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            sys.exit(f'{variant} failed:\n{child.stderr[-4000:]}')
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    base = rows[0]
    print(
        f'{args.config}: batch {args.batch} x {args.size[0]}x{args.size[1]}, '
        f'{args.device}{", fp16" if args.amp else ""}, mean of {args.steps} steps'
    )
    print('| variant | s / step | x fixed | peak MiB | x fixed |')
    print('|---|---|---|---|---|')
    for row in rows:
        print(
            f'| {row["variant"]} | {row["seconds"]:.3f} | {row["seconds"] / base["seconds"]:.2f} '
            f'| {row["peak_mib"]:.0f} | {row["peak_mib"] / base["peak_mib"]:.2f} |'
        )
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(vars(args), rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
