import os
import threading

import pytest

from tools.runs import map_concurrently


def test_map_concurrently_runs_jobs_at_a_time_with_a_share_of_the_cores():
    barrier = threading.Barrier(2, timeout=10)  # breaks unless two calls overlap
    envs = []

    def call(item, env):
        envs.append(env)
        barrier.wait()
        return item * 10

    assert map_concurrently(call, [1, 2, 3, 4], jobs=2) == [10, 20, 30, 40]
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert envs == [dict(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)] * 4


def test_map_concurrently_raises_the_first_failure():
    def call(item, env):
        if item == 2:
            raise RuntimeError('run 2 failed')
        return item

    with pytest.raises(RuntimeError, match='run 2 failed'):
        map_concurrently(call, [1, 2, 3], jobs=2)
    with pytest.raises(ValueError, match='jobs'):
        map_concurrently(call, [1], jobs=0)
