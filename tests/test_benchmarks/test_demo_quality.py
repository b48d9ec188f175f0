"""The quality benchmark's bookkeeping: best baseline, convergence
iterations and the table (the runs themselves are the demo's tools, tested
in tests/test_tools/test_demo.py)."""
import importlib.util
import os.path as osp

import pytest

from tests.conftest import REPO


@pytest.fixture(scope='module')
def demo_quality():
    spec = importlib.util.spec_from_file_location(
        'demo_quality', osp.join(REPO, 'benchmarks/demo_quality.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(curve, seconds=0.5):
    return dict(curve=curve, curve50=[(s, 2 * v) for s, v in curve], seconds_per_iter=seconds)


def test_best_baseline_excludes_mokd_and_iterations_to_reach_it(demo_quality):
    results = {
        'student alone': [_run([(60, 0.01), (120, 0.03)]), _run([(60, 0.02), (120, 0.05)])],
        'fixed a=1': [_run([(60, 0.04), (120, 0.10)]), _run([(60, 0.05), (120, 0.12)])],
        'MoKD': [_run([(60, 0.11), (120, 0.20)]), _run([(60, 0.05), (120, 0.09)])],
    }
    summary = demo_quality.summarize(results)
    assert summary['best_baseline'] == 'fixed a=1'
    assert summary['target_ap'] == pytest.approx(0.11)
    rows = summary['variants']
    assert rows['MoKD']['iters_to_best_baseline'] == [60, None]
    assert rows['fixed a=1']['iters_to_best_baseline'] == [None, 120]
    assert rows['student alone']['iters_to_best_baseline'] == [None, None]
    assert rows['MoKD']['ap_mean'] == pytest.approx(0.145)
    assert rows['MoKD']['ap_std'] == pytest.approx(0.055)
    table = demo_quality.markdown(summary, 120, [0, 1])
    assert '| MoKD | 14.5 ± 5.5 | 29.0 ± 11.0 | 60, - | 0.500 |' in table
    assert 'reach 11.0 AP (fixed a=1)' in table


def test_variants_cover_the_alpha_grid_and_the_baselines(demo_quality):
    names = [name for name, _, _ in demo_quality.variants([0.25, 1, 4])]
    assert names == ['student alone', 'fixed a=0.25', 'fixed a=1', 'fixed a=4', 'VkD', 'MoKD']
    options = dict((name, opts) for name, _, opts in demo_quality.variants([0.25]))
    assert options['fixed a=0.25'] == ['optim_wrapper.weights.distill=0.25']
