import pytest
import torch

from mokd_mm.core import IndefiniteSubspaceConnector, LinearConnector, OrthogonalProjector


def _weight(projector):
    return projector.proj.weight  # (out, in) under the parametrization


def test_projection_stays_orthonormal_under_training_with_weight_decay():
    proj = OrthogonalProjector(8, 20)
    # Weight decay as a model optimizer applies it to every parameter: with
    # torch's default (householder) map for tall weights it zeroes them.
    opt = torch.optim.SGD(proj.parameters(), lr=0.5, weight_decay=0.5)
    for _ in range(5):
        s, t = proj(torch.randn(4, 8), torch.randn(4, 20))
        ((s - t) ** 2).mean().backward()
        opt.step()
        opt.zero_grad()
    w = _weight(proj)
    k = w.shape[1]
    assert torch.allclose(w.T @ w, torch.eye(k), atol=1e-5)


def test_indefinite_connector_shapes_and_isometries():
    conn = IndefiniteSubspaceConnector(6, 10)
    assert conn.dim == 16  # C_s + C_t by default
    tokens_s, tokens_t = torch.randn(2, 5, 6), torch.randn(2, 5, 10)
    s, t = conn(tokens_s, tokens_t)
    assert s.shape == t.shape == (2, 5, 16)
    # P_t is an isometry and D starts at ones: norms are preserved.
    assert torch.allclose(t.norm(dim=-1), tokens_t.norm(dim=-1), atol=1e-5)
    assert torch.allclose(s.norm(dim=-1), tokens_s.norm(dim=-1), atol=1e-5)
    maps_s, maps_t = torch.randn(2, 6, 3, 4), torch.randn(2, 10, 3, 4)
    ms, mt = conn(maps_s, maps_t)
    assert ms.shape == mt.shape == (2, 16, 3, 4)
    # Maps and tokens go through the same channel map.
    assert torch.allclose(
        ms.permute(0, 2, 3, 1).reshape(-1, 16),
        conn(maps_s.permute(0, 2, 3, 1).reshape(-1, 6), maps_t.permute(0, 2, 3, 1).reshape(-1, 10))[
            0
        ],
        atol=1e-5,
    )


def test_metric_is_sign_free_and_similarity_is_eq16():
    conn = IndefiniteSubspaceConnector(3, 4, dim=9)
    with torch.no_grad():
        conn.metric.copy_(torch.linspace(-2, 2, 9))
    zs, zt = torch.randn(5, 3), torch.randn(5, 4)
    p_s = conn.student_proj.proj.weight  # (9, 3)
    p_t = conn.teacher_proj.proj.weight  # (9, 4)
    expected = ((zt @ p_t.T) * conn.metric * (zs @ p_s.T)).sum(-1)
    lifted_s, lifted_t = conn(zs, zt)  # (D P_s z_s, P_t z_t)
    similarity = (lifted_s * lifted_t).sum(-1)  # z_t^T P_t^T D P_s z_s
    assert torch.allclose(similarity, expected, atol=1e-5)
    # A negative metric entry is kept (no positivity constraint).
    similarity.sum().backward()
    assert conn.metric.grad is not None and (conn.metric < 0).any()


def test_ablation_switches():
    fixed = IndefiniteSubspaceConnector(4, 12, indefinite=False)
    assert not any(n.startswith('metric') for n, _ in fixed.named_parameters())
    s, t = fixed(torch.randn(2, 4), torch.randn(2, 12))
    assert s.shape == t.shape == (2, 16)
    with pytest.raises(ValueError, match='dim=5'):
        IndefiniteSubspaceConnector(4, 12, dim=5)


def test_channel_mismatch_names_the_side():
    conn = LinearConnector(4, 8)
    with pytest.raises(ValueError, match='student feature has 5 channels'):
        conn(torch.randn(2, 5), torch.randn(2, 8))
    with pytest.raises(ValueError, match='teacher feature has 7 channels'):
        conn(torch.randn(2, 4), torch.randn(2, 7))
    with pytest.raises(ValueError, match='student_dim'):
        LinearConnector(0, 8)


def test_qr_retraction_is_thin_and_keeps_its_map_under_decay():
    proj = OrthogonalProjector(3, 40)
    state = proj.state_dict()
    # Only the (40, 3) free tensor: no (40, 40) base as torch's cayley map keeps.
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        'proj.parametrizations.weight.original': (40, 3)
    }
    before = _weight(proj).detach().clone()
    with torch.no_grad():
        proj.proj.parametrizations.weight.original.mul_(1e-3)  # what decay does, in bulk
    assert torch.allclose(_weight(proj), before, atol=1e-5)
    cayley = OrthogonalProjector(3, 40, orthogonal_map='cayley')
    assert 'proj.parametrizations.weight.0.base' in cayley.state_dict()
    with pytest.raises(ValueError, match='orthogonal_map must be one of'):
        OrthogonalProjector(3, 4, orthogonal_map='svd')
