"""The quality benchmark's bookkeeping: the reference fixed weighting, the
paired differences with their confidence intervals, the variants and the
table (the runs themselves are the demo's tools, tested in
tests/test_tools/test_demo.py)."""

import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import REPO


@pytest.fixture(scope='module')
def demo_quality():
    spec = importlib.util.spec_from_file_location(
        'demo_quality', osp.join(REPO, 'benchmarks/demo_quality.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(finals, seconds=0.5):
    return [
        dict(seed=seed, curve=[(100, 0.0), (300, value)], seconds_per_iter=seconds)
        for seed, value in enumerate(finals)
    ]


def test_paired_differences_to_the_best_fixed_weighting(demo_quality):
    results = {
        'student alone': _runs([50.0, 60.0, 55.0]),
        'fixed a=0.5': _runs([60.0, 64.0, 62.0]),
        'fixed a=1': _runs([58.0, 61.0, 57.0]),
        'MGDA': _runs([63.0, 66.0, 66.0]),
    }
    summary = demo_quality.summarize(results, percent=1.0)
    assert summary['reference'] == 'fixed a=0.5'
    row = summary['variants']['MGDA']
    # Differences per seed: 3, 2, 4 -> mean 3, sd 1, t(0.975, 2) = 4.303.
    assert row['diff'] == pytest.approx(3.0)
    assert row['ci'] == pytest.approx((3.0 - 4.3027 / 3**0.5, 3.0 + 4.3027 / 3**0.5), abs=1e-3)
    assert row['mean'] == pytest.approx(65.0)
    table = demo_quality.markdown(summary, 'accuracy/top1', [0, 1, 2])
    assert table.splitlines()[2].startswith('| MGDA | 65.0 ± 1.4 | +3.0 [+0.5, +5.5] |')
    assert '| fixed a=0.5 | 62.0 ± 1.6 | - |' in table


def test_variants_select_each_balancer_on_the_distiller_config(demo_quality):
    task = demo_quality.TASKS['classification']
    variants = list(demo_quality.variants(task, [0.25, 4], ['MoKD exact', 'PCGrad']))
    assert [v[0] for v in variants] == [
        'student alone',
        'fixed a=0.25',
        'fixed a=4',
        'MoKD exact',
        'PCGrad',
    ]
    assert 'VkD' in [v[0] for v in demo_quality.variants(demo_quality.TASKS['detection'], [1], [])]
    # The options build the intended balancer from the distiller's config.
    for name, config, options in variants[1:]:
        cfg = Config.fromfile(osp.join(REPO, config))
        cfg.merge_from_dict(dict(option.split('=', 1) for option in options))
        balancer = cfg.optim_wrapper.balancer
        expected = {
            'fixed a=0.25': 'FixedWeights',
            'fixed a=4': 'FixedWeights',
            'MoKD exact': 'MoKDExact',
            'PCGrad': 'PCGrad',
        }[name]
        assert balancer.type == expected
        if name == 'fixed a=4':
            assert float(balancer.weights.distill) == 4.0
    famo = demo_quality.RULES['MoKD amortized (Adam + L2, FAMO)']
    cfg = Config.fromfile(osp.join(REPO, demo_quality.TASKS['detection']['distiller']))
    cfg.merge_from_dict(dict(option.split('=', 1) for option in famo))
    assert cfg.optim_wrapper.balancer.optimizer.type == 'Adam'
