"""The loss-weighting rules against their published definitions, by hand."""

import pytest
import torch

from mokd_mm.core.balancers import (
    DynamicWeightAverage,
    FixedWeights,
    RandomLossWeighting,
    ScaleInvariant,
    UncertaintyWeighting,
)


def test_fixed_weights_by_name_or_order():
    rule = FixedWeights(2, names=['distill', 'task'], weights=dict(task=2.0, distill=0.3))
    assert rule.objective_weights(torch.tensor([1.0, 1.0])).tolist() == pytest.approx([0.3, 2.0])
    assert FixedWeights(3).objective_weights(torch.ones(3)).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match='exactly the objectives'):
        FixedWeights(2, names=['distill', 'task'], weights=dict(distill=1.0))
    with pytest.raises(ValueError, match='2 weights for 3'):
        FixedWeights(3, weights=[1.0, 2.0])


def test_scale_invariant_is_the_gradient_of_the_summed_logs():
    theta = torch.tensor([1.5, -0.5], requires_grad=True)
    losses = torch.stack([theta[0] ** 2, torch.exp(theta[1])])
    ScaleInvariant(2).backward(losses)
    ref = theta.detach().clone().requires_grad_(True)
    torch.log(torch.stack([ref[0] ** 2, torch.exp(ref[1])])).sum().backward()
    assert theta.grad.tolist() == pytest.approx(ref.grad.tolist())
    with pytest.warns(RuntimeWarning, match='not positive'):
        assert ScaleInvariant(2).objective_weights(torch.tensor([0.0, 2.0])).tolist() == [0.0, 0.5]


def test_uncertainty_weighting_is_joint_descent_on_kendalls_objective():
    """Model and log-variances descending 0.5 (exp(-s) L + s) together."""
    rule = UncertaintyWeighting(2)
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    ref_theta = theta.detach().clone().requires_grad_(True)
    ref_s = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=0.05)
    sgd = torch.optim.SGD([ref_theta], lr=0.05)
    adam = torch.optim.Adam([ref_s], lr=0.025)
    for _ in range(5):
        applied = 0.5 * torch.exp(-ref_s.detach())
        losses = torch.stack([theta[0] ** 2 + 1, theta[1] ** 2 + 3])
        rule.backward(losses)
        opt.step()
        opt.zero_grad()
        rule.update(losses.detach())

        ref_losses = torch.stack([ref_theta[0] ** 2 + 1, ref_theta[1] ** 2 + 3])
        (0.5 * (torch.exp(-ref_s) * ref_losses + ref_s)).sum().backward()
        sgd.step()
        adam.step()
        sgd.zero_grad()
        adam.zero_grad()
    assert theta.tolist() == pytest.approx(ref_theta.tolist(), rel=1e-6)
    assert rule.log_variances.tolist() == pytest.approx(ref_s.tolist(), rel=1e-6)
    assert rule.log_vars()['weight_0'] == pytest.approx(float(applied[0]), rel=1e-6)


def test_dynamic_weight_average_by_hand():
    rule = DynamicWeightAverage(2, window=2, temperature=2.0)
    seq = [torch.tensor(v) for v in ([4.0, 1.0], [2.0, 1.0], [1.0, 1.0], [1.0, 2.0])]
    weights = [rule.objective_weights(v) for v in seq]
    # Until more than `window` objectives were seen: lambda = 1.
    for w in weights[:3]:
        assert w.tolist() == [1.0, 1.0]
    # The 2 * window last objectives at the 4th call: [4, 1], [2, 1] (older
    # window) and [1, 1], [1, 2] (recent one).
    ratio = torch.tensor([(1 + 1) / (4 + 2), (1 + 2) / (1 + 1)])
    expected = 2 * torch.softmax(ratio / 2.0, 0)
    assert weights[3].tolist() == pytest.approx(expected.tolist())
    assert float(weights[3].sum()) == pytest.approx(2.0)  # MTAN: sums to K
    clone = DynamicWeightAverage(2, window=2)
    clone.load_state_dict(rule.state_dict())
    nxt = torch.tensor([3.0, 1.0])
    assert clone.objective_weights(nxt).tolist() == rule.objective_weights(nxt).tolist()


def test_random_loss_weighting_draws_softmax_normal_weights():
    rule = RandomLossWeighting(3, seed=7)
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        expected = torch.softmax(torch.randn(3, generator=gen), 0)
        assert rule.objective_weights(torch.ones(3)).tolist() == pytest.approx(expected.tolist())
    resumed = RandomLossWeighting(3, seed=0)
    resumed.load_state_dict(rule.state_dict())
    assert torch.equal(
        resumed.objective_weights(torch.ones(3)), rule.objective_weights(torch.ones(3))
    )
    torch.manual_seed(11)
    assert torch.equal(
        RandomLossWeighting(2).generator.get_state(), torch.Generator().manual_seed(11).get_state()
    )
