"""The gradient-based rules against their published definitions, by hand."""

import pytest
import torch

from mokd_mm.core.balancers import IMTLG, MGDA, CAGrad, GradDrop, PCGrad


def _conflicting(seed=0, k=2, n=6):
    gen = torch.Generator().manual_seed(seed)
    grads = torch.randn(k, n, generator=gen, dtype=torch.float64)
    grads[1] = -grads[0] * 0.5 + 0.5 * grads[1]
    return grads


@pytest.mark.parametrize('normalization', ['none', 'loss', 'norm', 'loss+'])
def test_mgda_two_objectives_closed_form(normalization):
    grads = _conflicting()
    losses = torch.tensor([0.5, 3.0], dtype=torch.float64)
    norms = grads.norm(dim=1)
    divisor = {
        'none': torch.ones(2, dtype=torch.float64),
        'loss': losses,
        'norm': norms,
        'loss+': losses * norms,
    }[normalization]
    v1, v2 = grads[0] / divisor[0], grads[1] / divisor[1]
    c = float((v2 @ v2 - v1 @ v2) / ((v1 - v2) @ (v1 - v2)))
    assert 0.001 < c < 0.999
    direction = MGDA(2, normalization=normalization).combine_gradients(grads, losses)
    # The raw gradients are combined with the weights of the normalised ones.
    assert torch.allclose(direction, c * grads[0] + (1 - c) * grads[1], rtol=1e-10)


def test_pcgrad_projects_each_conflicting_pair():
    g = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    rule = PCGrad(3, seed=0)
    direction = rule.combine_gradients(g, torch.ones(3))
    # g1 conflicts with g2 only: g1' = g1 - (g1.g2 / |g2|^2) g2 = (0.5, 0.5, 0),
    # g2' = g2 - (g2.g1 / |g1|^2) g1 = (0, 1, 0); g3 untouched; any order.
    assert direction.tolist() == pytest.approx([0.5, 1.5, 1.0])
    assert rule.applied.tolist() == pytest.approx([2.0, 1.5, 1.0])  # 2 g1 + 1.5 g2 + g3
    assert torch.allclose(rule.applied @ g, direction)
    two = _conflicting()
    expected = (
        two[0]
        - (two[0] @ two[1]) / (two[1] @ two[1]) * two[1]
        + two[1]
        - (two[1] @ two[0]) / (two[0] @ two[0]) * two[0]
    )
    assert torch.allclose(PCGrad(2).combine_gradients(two, torch.ones(2)), expected)


def test_cagrad_solves_its_dual_and_combines_as_published():
    grads = _conflicting(seed=3, k=2, n=5)
    c = 0.4
    rule = CAGrad(2, c=c)
    direction = rule.combine_gradients(grads, torch.ones(2, dtype=torch.float64))
    g0 = grads.mean(0)
    radius = c * float(g0.norm())
    # Brute force over the simplex: min_w <g_w, g0> + c |g0| |g_w|.
    grid = torch.linspace(0, 1, 100001, dtype=torch.float64)[:, None]
    g_w = grid * grads[0] + (1 - grid) * grads[1]
    dual = g_w @ g0 + radius * g_w.norm(dim=1)
    best = g_w[int(torch.argmin(dual))]
    expected = 2 * (g0 + radius / best.norm() * best) / (1 + c**2)
    assert torch.allclose(direction, expected, rtol=1e-3)
    # The result improves the worse objective: both inner products positive.
    assert (grads @ direction > 0).all()


def test_graddrop_keeps_one_sign_per_coordinate():
    grads = torch.tensor([[1.0, -2.0, 3.0, 0.5], [-1.0, -1.0, 1.0, -0.5]])
    rule = GradDrop(2, seed=5)
    direction = rule.combine_gradients(grads, torch.ones(2))
    purity = 0.5 * (1 + grads.sum(0) / (grads.abs().sum(0) + 1e-8))
    draw = torch.rand(4, generator=torch.Generator().manual_seed(5))
    positive = purity > draw
    expected = torch.where(positive, grads.clamp(min=0).sum(0), grads.clamp(max=0).sum(0))
    assert direction.tolist() == pytest.approx(expected.tolist())
    assert direction[1] == -3.0 and direction[2] == 4.0  # pure signs always survive
    assert rule.applied is None


def test_imtlg_projects_equally_on_every_unit_gradient():
    gen = torch.Generator().manual_seed(1)
    grads = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    rule = IMTLG(3)
    direction = rule.combine_gradients(grads, torch.ones(3, dtype=torch.float64))
    units = grads / grads.norm(dim=1, keepdim=True)
    projections = units @ direction
    assert torch.allclose(projections, projections[0].expand(3), rtol=1e-10)
    assert float(rule.applied.sum()) == pytest.approx(1.0)
    assert torch.allclose(rule.applied @ grads, direction)


class TrunkAndHeads(torch.nn.Module):
    """A shared trunk, one head per objective, and a connector reached by
    the first objective only (as a distiller's)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = torch.nn.Linear(4, 3)
        self.head_a, self.head_b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
        self.connector = torch.nn.Linear(3, 3, bias=False)
        self.x = torch.randn(16, 4)
        self.ya, self.yb = torch.randn(16, 1), -torch.randn(16, 1) * 3

    def objectives(self):
        h = torch.relu(self.trunk(self.x))
        a = ((self.head_a(self.connector(h)) - self.ya) ** 2).mean()
        b = ((self.head_b(h) - self.yb) ** 2).mean()
        return [a, b]  # separate scalars: each keeps its own graph


def _pcgrad_two(g):
    """PCGrad for two objectives: each gradient loses its component along
    the other when they conflict; the update is the sum."""
    out = []
    for i, j in ((0, 1), (1, 0)):
        gi, gj = g[i], g[j]
        dot = gi @ gj
        out.append(gi - dot / (gj @ gj) * gj if dot < 0 else gi)
    return out[0] + out[1]


def _mgda_two(g):
    """The min-norm combination of two gradients (pi on [0, 1])."""
    pi = ((g[1] - g[0]) @ g[1] / ((g[0] - g[1]) @ (g[0] - g[1]))).clamp(0, 1)
    return pi * g[0] + (1 - pi) * g[1]


@pytest.mark.parametrize('rule, by_hand', [(PCGrad, _pcgrad_two), (MGDA, _mgda_two)])
def test_gradient_rules_act_on_the_shared_trunk_and_heads_keep_their_gradients(rule, by_hand):
    """The reference usage (FAMO's and LibMTL's): the rule on the shared
    parameters' gradients, every head (and the connector) its own
    objective's gradient; parameters='all' puts the heads into the rule."""
    model = TrunkAndHeads()
    shared = list(model.trunk.parameters())
    reached_by_a = [*model.head_a.parameters(), *model.connector.parameters()]
    own = [(p, 0) for p in reached_by_a] + [(p, 1) for p in model.head_b.parameters()]
    objectives = model.objectives()
    trunk = torch.stack(
        [
            torch.cat([g.flatten() for g in torch.autograd.grad(o, shared, retain_graph=True)])
            for o in objectives
        ]
    )
    expected_trunk = by_hand(trunk)
    expected_own = [torch.autograd.grad(objectives[i], p, retain_graph=True)[0] for p, i in own]
    params = list(model.parameters())
    rule(2, seed=0).backward(objectives, params) if rule is PCGrad else rule(2).backward(
        objectives, params
    )
    got_trunk = torch.cat([p.grad.flatten() for p in shared])
    assert torch.allclose(got_trunk, expected_trunk, atol=1e-6)
    for (p, _), g in zip(own, expected_own):
        assert torch.allclose(p.grad, g, atol=1e-7)
    # On every parameter, the rule sees the heads too: another trunk update.
    model.zero_grad()
    every = rule(2, seed=0, parameters='all') if rule is PCGrad else rule(2, parameters='all')
    every.backward(model.objectives(), params)
    assert not torch.allclose(
        torch.cat([p.grad.flatten() for p in shared]), expected_trunk, atol=1e-4
    )
