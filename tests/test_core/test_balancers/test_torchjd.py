"""TorchJD's rules through one adapter: the same published rule as ours
gives the same update (or the constant factor docs/design.md states),
Nash-MTL meets its bargaining condition, random rules draw from the
balancer's own generator, stateful ones resume."""

import sys
import warnings

import pytest
import torch

from mokd_mm.core.balancers import IMTLG, MGDA, CAGrad, PCGrad, TorchJDBalancer

warnings.filterwarnings('ignore', message='.*not DPP.*')  # cvxpy, inside Nash-MTL


def _jacobian(seed, k=2, p=10):
    gen = torch.Generator().manual_seed(seed)
    jac = torch.randn(k, p, generator=gen, dtype=torch.float64)
    jac[1] = -0.8 * jac[0] + 0.3 * jac[1]  # a conflict
    return jac


def _update(rule, jac):
    return rule.combine_gradients(jac, torch.ones(jac.shape[0], dtype=torch.float64))


@pytest.mark.parametrize('seed', range(3))
def test_the_same_published_rule_gives_the_same_update(seed):
    jac = _jacobian(seed)
    for ours, theirs in (
        (MGDA(2), dict(type='MGDA', epsilon=1e-12, max_iters=10**5)),
        (IMTLG(2), dict(type='IMTLG')),
        (PCGrad(2, seed=0), dict(type='PCGrad')),
    ):
        torch.testing.assert_close(
            _update(ours, jac), _update(TorchJDBalancer(2, aggregator=theirs), jac)
        )
    # CAGrad: our update is the authors' code's, K / (1 + c^2) times TorchJD's.
    for k in (2, 3):
        jac = _jacobian(seed, k=k)
        ours = _update(CAGrad(k, c=0.4), jac)
        theirs = _update(TorchJDBalancer(k, aggregator=dict(type='CAGrad', c=0.4)), jac)
        torch.testing.assert_close(ours, theirs * k / 1.16, rtol=2e-2, atol=1e-3)


def test_nash_mtl_benefits_every_objective():
    """Nash-MTL's bargaining solution has alpha_i (G alpha)_i > 0: the update
    descends every objective, even where the gradients conflict."""
    rule = TorchJDBalancer(3, aggregator=dict(type='NashMTL', max_norm=0.0))
    conflicts = 0
    for seed in range(4):
        jac = _jacobian(seed, k=3)
        update = _update(rule, jac)
        assert (rule.applied > 0).all()
        assert (jac @ update > 0).all()
        conflicts += int((jac @ jac.sum(0) < 0).any())  # the plain sum harms one
    assert conflicts > 0


@pytest.mark.parametrize('aggregator', ['Random', 'PCGrad', 'GradDrop', 'NashMTL', 'GradVac'])
def test_random_and_stateful_rules_are_reproducible_and_resume(aggregator):
    spec = dict(type=aggregator)
    first, second = (TorchJDBalancer(3, aggregator=spec, seed=7) for _ in range(2))
    for seed in range(3):  # two processes with one seed draw the same
        jac = _jacobian(seed, k=3)
        torch.testing.assert_close(_update(first, jac), _update(second, jac))
    resumed = TorchJDBalancer(3, aggregator=spec, seed=0)
    resumed.load_state_dict(first.state_dict())
    jac = _jacobian(9, k=3)
    torch.testing.assert_close(_update(resumed, jac), _update(first, jac))


def test_a_gramian_weighting_and_the_errors_that_name_what_is_wrong(monkeypatch):
    jac = _jacobian(0)
    by_weighting = TorchJDBalancer(2, weighting=dict(type='UPGradWeighting'))
    torch.testing.assert_close(_update(by_weighting, jac), _update(TorchJDBalancer(2), jac))
    assert set(by_weighting.log_vars()) == {'weight_0', 'weight_1'}
    with pytest.raises(ValueError, match="'Nope' is not a TorchJD Aggregator: one of .*'UPGrad'"):
        TorchJDBalancer(2, aggregator=dict(type='Nope'))
    with pytest.raises(ValueError, match='not both'):
        TorchJDBalancer(2, aggregator=dict(type='UPGrad'), weighting=dict(type='MeanWeighting'))
    monkeypatch.setitem(sys.modules, 'torchjd', None)
    with pytest.raises(ImportError, match=r'needs the package torchjd: pip install "torchjd'):
        TorchJDBalancer(2)
