"""Scripted runs of this repository's ``tools/train.py`` and ``tools/test.py``
and the numbers read back from the files they write (tool plumbing, kept out
of the installed package).

The demo (``tools/demo.py``) and the quality benchmark
(``benchmarks/demo_quality.py``) are sequences of these runs, so what they
do is what a user would type. Each run's full output goes to a log file in
its work directory; the console gets one line per logged interval.
"""

import glob
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

_TRAIN_PROGRESS = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?\btime: ([\d.]+)')
_LOSS = re.compile(r'\sloss: ([\d.]+)')
_METRIC = re.compile(r'([\w]+/[\w]+): (-?\d+\.\d+)')  # for the progress lines only


def run_tool(
    repo: str, args: Sequence[str], log_file: str, label: str, env: Optional[Dict[str, str]] = None
) -> str:
    """Run ``python <args>`` in ``repo`` (with ``env`` added to the
    environment), writing its output to ``log_file`` and a short progress
    line per logged training interval (and per validation) to the console.
    Returns the output; raises ``RuntimeError`` with its tail if the tool
    fails."""
    command = [sys.executable, *args]
    print('$ ' + ' '.join(shlex.quote(a) for a in command), flush=True)
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    lines = []
    with open(log_file, 'w') as log, subprocess.Popen(
        command,
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=dict(os.environ, **(env or {})),
    ) as proc:
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            progress = _TRAIN_PROGRESS.search(line)
            if progress:
                done, total, seconds = progress.groups()
                loss = _LOSS.search(line)
                eta = (int(total) - int(done)) * float(seconds)
                print(
                    f'  [{label}] iter {done}/{total}'
                    + (f'  loss {float(loss.group(1)):.3f}' if loss else '')
                    + f'  {float(seconds):.2f} s/iter  ~{eta:.0f} s left',
                    flush=True,
                )
            elif 'Iter(val)' in line and 'coco/bbox_mAP:' in line:
                metrics = dict(_METRIC.findall(line))
                print(f'  [{label}] val bbox AP {float(metrics["coco/bbox_mAP"]):.3f}', flush=True)
    output = ''.join(lines)
    if proc.returncode != 0:
        raise RuntimeError(
            f'{" ".join(args[:2])} failed (exit {proc.returncode}); '
            f'full log: {log_file}\n' + ''.join(lines[-40:])
        )
    return output


def train(
    repo: str,
    config: str,
    work_dir: str,
    iters: int,
    val_interval: int,
    options: Sequence[str] = (),
    label: str = 'train',
    env: Optional[Dict[str, str]] = None,
) -> str:
    """Train ``config`` for ``iters`` iterations (cosine schedule over them,
    validation every ``val_interval``) into ``work_dir``; returns the final
    checkpoint's path."""
    train_options = [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={val_interval}',
        f'param_scheduler.0.T_max={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'default_hooks.logger.interval={max(1, min(20, iters // 5))}',
        *options,
    ]
    run_tool(
        repo,
        ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *train_options],
        osp.join(repo, work_dir, 'train_console.log'),
        label,
        env,
    )
    return osp.join(work_dir, f'iter_{iters}.pth')


def ensure_teacher(
    repo: str, config: str, checkpoint: str, iters: int, env: Optional[Dict[str, str]] = None
) -> str:
    """``checkpoint`` (relative to ``repo``), training ``config`` for
    ``iters`` iterations into ``<its folder>/teacher`` first when it does not
    exist yet."""
    if osp.exists(osp.join(repo, checkpoint)):
        print(f'reusing {checkpoint} (delete it to train the teacher again)', flush=True)
        return checkpoint
    work_dir = osp.join(osp.dirname(checkpoint), 'teacher')
    last = train(repo, config, work_dir, iters, val_interval=iters, label='teacher', env=env)
    os.replace(osp.join(repo, last), osp.join(repo, checkpoint))
    return checkpoint


def test(
    repo: str,
    config: str,
    checkpoint: str,
    work_dir: str,
    options: Sequence[str] = (),
    label: str = 'test',
    env: Optional[Dict[str, str]] = None,
) -> Dict[str, float]:
    """Evaluate ``checkpoint`` with ``tools/test.py``; returns the metrics
    (e.g. ``coco/bbox_mAP``) MMEngine writes to the run's JSON file."""
    extra = ['--cfg-options', *options] if options else []
    run_tool(
        repo,
        ['tools/test.py', config, checkpoint, '--work-dir', work_dir, *extra],
        osp.join(repo, work_dir, 'test_console.log'),
        label,
        env,
    )
    return test_metrics(osp.join(repo, work_dir))


def test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics of the newest test run in ``work_dir``
    (``<timestamp>/<timestamp>.json``), without its timings."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    runs = [p for p in runs if osp.basename(p) == osp.basename(osp.dirname(p)) + '.json']
    if not runs:
        raise FileNotFoundError(
            f'no test results (<timestamp>/<timestamp>.json) under {work_dir!r}'
        )
    with open(runs[-1]) as f:
        return {k: v for k, v in json.load(f).items() if '/' in k}


#: Environment variables that pin the code paths of torch's CPU kernels to
#: AVX2: ATen's vectorised kernels, oneMKL's BLAS (its conditional numerical
#: reproducibility branch) and oneDNN's convolutions and activations. Left to
#: themselves they pick the widest instructions the CPU has (AVX-512, AMX),
#: and each choice rounds differently.
AVX2_CODE_PATHS = dict(ATEN_CPU_CAPABILITY='avx2', MKL_CBWR='AVX2', ONEDNN_MAX_CPU_ISA='AVX2')


def can_pin_code_paths() -> bool:
    """Whether this CPU runs :data:`AVX2_CODE_PATHS` (an x86 CPU with AVX2)."""
    return torch.backends.cpu.get_cpu_capability() in ('AVX2', 'AVX512')


def cpu_env(threads: int, pin_code_paths: bool = False) -> Dict[str, str]:
    """Environment of a run with ``threads`` intra-op threads
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``).

    With ``pin_code_paths`` (:data:`AVX2_CODE_PATHS`) a run's floating-point
    results no longer depend on the CPU's instruction set: given the same
    thread count they are the same, bit for bit, on Intel CPUs with AVX2 as
    far as oneMKL documents for its reproducibility mode (ATen's AVX2 kernels
    are fixed code; oneDNN generates its kernels for AVX2 at run time; on
    other x86 CPUs oneMKL may take another branch).
    Training a small detector is chaotic enough that the last bit of one
    step changes the final AP by several points, so this is what makes a run
    repeatable on another machine.
    """
    if threads < 1:
        raise ValueError(f'threads must be >= 1, got {threads}')
    env = dict(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if pin_code_paths:
        if not can_pin_code_paths():
            raise RuntimeError(
                'pinning the CPU code paths to AVX2 needs an x86 CPU with AVX2; '
                f'torch reports {torch.backends.cpu.get_cpu_capability()}'
            )
        env.update(AVX2_CODE_PATHS)
    return env


def map_concurrently(
    function: Callable, items: Sequence, jobs: int, env: Optional[Dict[str, str]] = None
) -> list:
    """``[function(item, env) for item in items]``, ``jobs`` calls at a
    time, started in the order of ``items``.

    ``env`` (for :func:`train` / :func:`test`) defaults to :func:`cpu_env`
    with an equal share of this process's cores per run, so concurrent runs
    do not oversubscribe them. On a small CPU two one-thread runs finish
    sooner than the same runs one after the other with two threads each: the
    small models' many little operators hardly use a second thread. Results
    keep the order of ``items``; the first failure is raised once the runs
    under way have ended.
    """
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, got {jobs}')
    if env is None:
        env = cpu_env(max(1, len(os.sched_getaffinity(0)) // jobs))
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda item: function(item, env), items))


def find_scalars(path: str) -> str:
    """``path`` itself if it is a file, else the newest
    ``*/vis_data/scalars.json`` under the work directory ``path``."""
    if osp.isfile(path):
        return path
    logs = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {path!r}')
    return logs[-1]


def _scalars(work_dir: str) -> List[dict]:
    """The records of the newest run's ``vis_data/scalars.json``."""
    with open(find_scalars(work_dir)) as f:
        return [json.loads(line) for line in f]


def seconds_per_iter(work_dir: str) -> float:
    """Mean training step time of a run, its first fifth (warm-up) left
    out."""
    times = [r['time'] for r in _scalars(work_dir) if 'time' in r and 'lr' in r]
    times = times[len(times) // 5 :]
    return sum(times) / len(times) if times else float('nan')


def val_curve(work_dir: str, metric: str = 'coco/bbox_mAP') -> List[Tuple[int, float]]:
    """``(iteration, value)`` of every validation of a run."""
    return [(r['step'], r[metric]) for r in _scalars(work_dir) if metric in r]


def student_parameters(checkpoint: str) -> int:
    """Learnable parameters of the student in ``checkpoint`` (a plain
    model's, or the ``student.`` part of a distiller's: connectors left
    out)."""
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    distiller = any(k.startswith('student.') for k in state)
    return sum(
        v.numel()
        for k, v in state.items()
        if (k.startswith('student.') or not distiller)
        and v.is_floating_point()
        and 'running_' not in k
    )
