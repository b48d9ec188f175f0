"""DOT (Zhao et al., ICCV 2023) from its definition: a task momentum
buffer and a larger distillation one on the parameters both objectives
reach, the mean momentum and weight decay on those only one reaches."""

import pytest
import torch

from mokd_mm.core.balancers import DOT


def _by_hand(steps, reach, params, momentum=0.9, delta=0.075, decay=0.01):
    """The two buffers, written out coordinate by coordinate."""
    task_buf, kd_buf, updates = {}, {}, []
    for g_kd, g_task in steps:
        update = torch.zeros_like(g_task)
        for j in range(len(g_task)):
            by_kd, by_task = bool(reach[0][j]), bool(reach[1][j])
            both = by_kd and by_task
            if by_task:
                d = g_task[j] + decay * params[j]
                m = momentum - delta if both else momentum
                task_buf[j] = m * task_buf[j] + d if j in task_buf else d
                update[j] += task_buf[j]
            if by_kd:
                d = g_kd[j] if both or j not in kd_buf else g_kd[j] + decay * params[j]
                m = momentum + delta if both else momentum
                kd_buf[j] = m * kd_buf[j] + d if j in kd_buf else d
                update[j] += kd_buf[j]
        updates.append(update)
    return updates


def test_dot_keeps_two_momenta_as_its_definition_says():
    torch.manual_seed(0)
    # Coordinates 0-2: both objectives; 3: distillation only; 4: task only.
    reach = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 1]], dtype=torch.bool)
    params = torch.randn(5, dtype=torch.float64)
    steps = [torch.randn(2, 5, dtype=torch.float64) * reach for _ in range(4)]
    rule = DOT(names=['distill', 'task'], weight_decay=0.01)
    got = [
        rule.combine_gradients(g, torch.ones(2, dtype=torch.float64), reached=reach, params=params)
        for g in steps
    ]
    for mine, expected in zip(got, _by_hand(steps, reach, params)):
        torch.testing.assert_close(mine, expected, rtol=1e-12, atol=1e-12)
    # Resumed from its state, it continues the same sequence.
    clone = DOT(names=['distill', 'task'], weight_decay=0.01)
    clone.load_state_dict(rule.state_dict())
    g = torch.randn(2, 5, dtype=torch.float64) * reach
    ones = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(
        clone.combine_gradients(g, ones, reached=reach, params=params),
        rule.combine_gradients(g, ones, reached=reach, params=params),
    )
    # An overflowed step (float16) leaves the buffers as they were.
    before = rule.buffers.clone()
    bad = g.clone()
    bad[0, 0] = float('inf')
    rule.combine_gradients(bad, ones, reached=reach, params=params)
    assert torch.equal(rule.buffers, before)


def test_dot_refuses_an_optimizer_that_would_apply_momentum_twice():
    params = [torch.nn.Parameter(torch.zeros(3))]
    rule = DOT()
    rule.check_compatible(torch.optim.SGD(params, lr=0.1))
    with pytest.raises(ValueError, match='momentum=0, weight_decay=0'):
        rule.check_compatible(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    with pytest.raises(ValueError, match='momentum=0, weight_decay=0'):
        rule.check_compatible(torch.optim.AdamW(params, lr=0.1))
    with pytest.raises(ValueError, match='accumulative_counts=2'):
        rule.check_compatible(torch.optim.SGD(params, lr=0.1), accumulation=2)
    with pytest.raises(ValueError, match="named 'distill' and 'task'"):
        DOT(2, names=['kd', 'ce'])
