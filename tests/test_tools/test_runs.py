import os
import os.path as osp
import threading

import pytest
import torch

from mokd_mm.datasets import make_shape_detection
from tests.test_tools.test_train_test_export import PYTHON, _run
from tools.runs import AVX2_CODE_PATHS, can_pin_code_paths, cpu_env, map_concurrently

TEACHER = 'configs/demo/vidt_swin-w32_shapes.py'  # the demo's


def test_map_concurrently_runs_jobs_at_a_time_with_a_share_of_the_cores():
    barrier = threading.Barrier(2, timeout=10)  # breaks unless two calls overlap
    envs = []

    def call(item, env):
        envs.append(env)
        barrier.wait()
        return item * 10

    assert map_concurrently(call, [1, 2, 3, 4], jobs=2) == [10, 20, 30, 40]
    assert envs == [cpu_env(max(1, len(os.sched_getaffinity(0)) // 2))] * 4
    pinned = cpu_env(1, pin_code_paths=can_pin_code_paths())
    assert map_concurrently(call, [1, 2], jobs=2, env=pinned) == [10, 20]
    assert envs[-2:] == [pinned] * 2


def test_map_concurrently_raises_the_first_failure():
    def call(item, env):
        if item == 2:
            raise RuntimeError('run 2 failed')
        return item

    with pytest.raises(RuntimeError, match='run 2 failed'):
        map_concurrently(call, [1, 2, 3], jobs=2)
    with pytest.raises(ValueError, match='jobs'):
        map_concurrently(call, [1], jobs=0)


def test_cpu_env_sets_threads_and_pins_code_paths_on_request():
    assert cpu_env(3) == dict(OMP_NUM_THREADS='3', MKL_NUM_THREADS='3')
    with pytest.raises(ValueError, match='threads'):
        cpu_env(0)
    if can_pin_code_paths():
        assert cpu_env(1, pin_code_paths=True) == dict(cpu_env(1), **AVX2_CODE_PATHS)


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    return make_shape_detection(
        str(tmp_path_factory.mktemp('coco')), num_train=4, num_val=2, image_size=(96, 96)
    )


def _train_teacher_two_steps(work_dir, data_root, env):
    """The demo teacher's weights after two steps on ``data_root``, trained
    by ``tools/train.py`` in a process with ``env``."""
    ann_file = osp.join(data_root, 'annotations', 'instances_val.json')
    options = [
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2',
        'train_dataloader.batch_size=2',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'val_evaluator.ann_file={ann_file}',
    ]
    _run(
        [PYTHON, 'tools/train.py', TEACHER, '--work-dir', str(work_dir), '--cfg-options', *options],
        env,
    )
    return torch.load(work_dir / 'iter_2.pth', map_location='cpu')['state_dict']


@pytest.mark.skipif(not can_pin_code_paths(), reason='needs an x86 CPU with AVX2')
def test_pinned_code_paths_train_the_same_weights_as_an_avx2_only_cpu(tmp_path, tiny_coco):
    pinned = cpu_env(1, pin_code_paths=True)
    reference = _train_teacher_two_steps(tmp_path / 'pinned', tiny_coco, pinned)
    # oneMKL dispatching as on a CPU without AVX-512 (ATen and oneDNN are
    # already held to AVX2 by the pinning itself).
    avx2_cpu = dict(pinned, MKL_ENABLE_INSTRUCTIONS='AVX2')
    same = _train_teacher_two_steps(tmp_path / 'avx2_cpu', tiny_coco, avx2_cpu)
    assert all(torch.equal(reference[k], same[k]) for k in reference)
    # One code path changed (ATen's scalar kernels) shows in the weights.
    scalar_aten = dict(pinned, ATEN_CPU_CAPABILITY='default')
    other = _train_teacher_two_steps(tmp_path / 'scalar_aten', tiny_coco, scalar_aten)
    assert not all(torch.equal(reference[k], other[k]) for k in reference)
