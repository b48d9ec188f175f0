"""TorchJD's Gramian engine (``torchjd.autogram``) against this package's
per-objective backward passes, for the rules that need only the Gramian of
the objectives' gradients (MoKDExact, MGDA): step time and peak memory,
side by side in one run.

The model is the classification demo's student (a ResNet-18 of width
``--width``) with two objectives on one batch, a task (cross-entropy) and a
distillation-like one (a regression of the logits). Each way computes the
2 x 2 Gramian and writes the min-norm update into ``.grad``:

* ``per-objective``: one ``backward()`` per objective into a (K, P) matrix
  (``mokd_mm.core.gradients.objective_gradients``), the Gramian, the update;
* ``autogram``: the engine's Gramian (no K x P matrix), then one backward
  pass of the weighted sum.

Peak memory is the process's maximum resident set, each way in a process of
its own. Usage:

    python benchmarks/gramian_engine.py [--width 8] [--batch 32] [--size 64] [--steps 5]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch


def _model_and_batch(width, batch, size):
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    import mokd_mm  # noqa: F401

    cfg = Config.fromfile('configs/demo/resnet18-w8_shapes.py').model.to_dict()
    cfg['backbone'].update(stem_channels=width, base_channels=width)
    cfg['head']['in_channels'] = 8 * width
    cfg.pop('data_preprocessor', None)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen)
    y = torch.randint(0, 4, (batch,), generator=gen)
    target = torch.randn(batch, 4, generator=gen)
    return model, x, y, target


def _objectives(model, x, y, target):
    logits = model.head.fc(model.neck(model.backbone(x))[-1])
    return torch.stack(
        [((logits - target) ** 2).mean(), torch.nn.functional.cross_entropy(logits, y)]
    )


def run(way, width, batch, size, steps):
    from mokd_mm.core.balancers import min_norm_weights
    from mokd_mm.core.gradients import objective_gradients

    model, x, y, target = _model_and_batch(width, batch, size)
    params = [p for p in model.parameters() if p.requires_grad]
    engine = None
    if way == 'autogram':
        from torchjd.autogram import Engine

        engine = Engine(model, batch_dim=None)
    times = []
    for _ in range(steps + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        objectives = _objectives(model, x, y, target)
        if engine is None:
            grads = objective_gradients(list(objectives), params, retain_graph=False)
            gram = grads.double() @ grads.double().T
            pi = min_norm_weights(gram).to(grads)
            update = pi @ grads
            offset = 0
            for p in params:
                p.grad = update[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        else:
            gram = engine.compute_gramian(objectives)
            pi = min_norm_weights(gram.double()).to(objectives)
            (pi @ objectives).backward()
        times.append(time.perf_counter() - start)
    grad = torch.cat([p.grad.reshape(-1) for p in params])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(seconds=statistics.median(times[1:]), peak_mib=peak, grad_norm=float(grad.norm()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=8)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--way', choices=['per-objective', 'autogram'])
    args = parser.parse_args()
    if args.way:
        print(json.dumps(run(args.way, args.width, args.batch, args.size, args.steps)))
        return
    results = {}
    for way in ('per-objective', 'autogram'):
        out = subprocess.run(
            [sys.executable, __file__, '--way', way]
            + [f'--{k}={getattr(args, k)}' for k in ('width', 'batch', 'size', 'steps')],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[way] = json.loads(out.strip().splitlines()[-1])
    base = results['per-objective']
    print(f'width {args.width}, batch {args.batch} x {args.size}^2, median of {args.steps} steps')
    for way, r in results.items():
        print(
            f'  {way:14s} {r["seconds"]:.3f} s/step ({r["seconds"] / base["seconds"]:.2f}x), '
            f'peak {r["peak_mib"]:.0f} MiB, |update| {r["grad_norm"]:.6g}'
        )


if __name__ == '__main__':
    main()
