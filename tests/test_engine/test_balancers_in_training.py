"""Every balancer through MoKDOptimWrapper and a MoKDDistiller: mixed
precision, accumulation, resume, and two processes (gloo, DDP) that must end
identical."""

import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mokd_mm.core.balancers import RULES
from tests.conftest import MOKD_CFG, build_in_scope

NAMES = [rule.__name__ for rule in RULES]


def _distiller(seed=0):
    cfg = Config.fromfile(MOKD_CFG)
    model = cfg.model.to_dict()
    model.update(teacher_ckpt=None, data_preprocessor=cfg.data_preprocessor.to_dict())
    torch.manual_seed(seed)
    return build_in_scope(model).train()


def _optimizer(balancer):
    """SGD with momentum; plain SGD for DOT, whose momenta are its own."""
    return dict(type='SGD', lr=0.05, momentum=0.0 if balancer == 'DOT' else 0.9)


def _wrapper(model, balancer, **kwargs):
    cfg = dict(
        type='MoKDOptimWrapper',
        constructor='MoKDOptimWrapperConstructor',
        optimizer=_optimizer(balancer),
        balancer=dict(type=balancer),
        diagnostics_interval=0,
        **kwargs,
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_optim_wrapper(model, cfg)


def _batch(seed, n=4):
    gen = torch.Generator().manual_seed(seed)
    return dict(
        inputs=[
            torch.randint(0, 256, (3, 32, 32), generator=gen, dtype=torch.uint8) for _ in range(n)
        ],
        data_samples=[DataSample().set_gt_label(int(i % 4)) for i in range(n)],
    )


def _parameters(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize('balancer', NAMES)
def test_accumulation_amp_and_resume(balancer):
    model = _distiller()
    # DOT's momenta advance once per step: it refuses accumulation.
    accumulation = 1 if balancer == 'DOT' else 2
    wrapper = _wrapper(model, balancer, accumulative_counts=accumulation, dtype='bfloat16')
    # The first (accumulated) step under bfloat16 autocast is float32's, to
    # bfloat16's precision: the same direction and length.
    start = _parameters(model)
    for step in range(accumulation):
        model.train_step(_batch(step), wrapper)
    reference = _distiller()
    reference_wrapper = _wrapper(reference, balancer, accumulative_counts=accumulation)
    for step in range(accumulation):
        reference.train_step(_batch(step), reference_wrapper)
    half, full = _parameters(model) - start, _parameters(reference) - start
    assert float(torch.nn.functional.cosine_similarity(half, full, dim=0)) > 0.9
    assert float(half.norm() / full.norm()) == pytest.approx(1.0, abs=0.1)
    for step in range(accumulation, 4):
        log_vars = model.train_step(_batch(step), wrapper)
    assert all(not k.startswith('mokd/') or v == v for k, v in log_vars.items())
    # Resume: the wrapper's state (optimizer and balancer) continues the run.
    state, params = copy.deepcopy(wrapper.state_dict()), _state(model)
    for step in range(4, 6):
        model.train_step(_batch(step), wrapper)
    resumed = _distiller()
    resumed.load_state_dict(params)
    other = _wrapper(resumed, balancer, accumulative_counts=accumulation, dtype='bfloat16')
    other.load_state_dict(state)
    for step in range(4, 6):
        resumed.train_step(_batch(step), other)
    for key, value in _state(model).items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _two_ranks(rank, port, out_dir):
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2
    )
    from mokd_mm.models import MoKDDistributedDataParallel

    results = {}
    for name in NAMES:
        model = _distiller(seed=rank)  # DDP starts every rank from rank 0's weights
        ddp = MoKDDistributedDataParallel(module=model)
        wrapper = _wrapper(ddp, name)
        torch.manual_seed(100 + rank)  # each rank's own randomness
        for step in range(3):
            ddp.train_step(_batch(10 * step + rank), wrapper)
        results[name] = dict(
            model=_state(model),
            balancer=wrapper.balancer.state_dict(),
            weights=wrapper.balancer.applied,
        )
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pth'))
    torch.distributed.destroy_process_group()


def test_two_processes_end_identical_under_every_rule(tmp_path):
    mp.spawn(_two_ranks, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in (0, 1))
    for name in NAMES:
        a, b = rank0[name], rank1[name]
        for key, value in a['model'].items():
            if 'running_' in key or 'num_batches' in key:
                continue  # BatchNorm statistics: each rank's last batch, as with DDP
            assert torch.equal(value, b['model'][key]), (name, key)
        for key, value in a['balancer'].items():
            if torch.is_tensor(value):
                assert torch.equal(value, b['balancer'][key]), (name, key)
        if a['weights'] is not None:
            assert torch.equal(a['weights'], b['weights']), name
