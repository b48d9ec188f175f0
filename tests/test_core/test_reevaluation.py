"""The side-effect-free second forward pass of same-batch re-evaluation."""

import torch
from torch import nn

from mokd_mm.core.reevaluation import reevaluation_mode
from tests.test_core.feature_net import FeatureNet


def test_reevaluation_leaves_no_trace():
    net = FeatureNet().train()
    x = torch.randn(8, 4)
    net(x)
    bn = net.body[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    with reevaluation_mode(net):
        out1 = net(x)[1]
        out2 = net(x)[1]
        assert not out1.requires_grad
    assert torch.equal(out1, out2)  # dropout off: deterministic
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert torch.equal(bn.num_batches_tracked, before[2])
    assert net.training and net.body[2].training and bn.momentum == 0.1
    # Batch statistics are still used (not the running ones).
    with reevaluation_mode(net):
        batch_stats = net.body[1](torch.full((4, 6), 5.0))
    assert torch.allclose(batch_stats, torch.zeros(4, 6), atol=1e-3)


def test_reevaluation_turns_off_attention_dropout():
    # nn.MultiheadAttention drops attention weights without a Dropout
    # submodule (mmcv's MultiheadAttention, hence ViDT's decoder, uses it).
    attn = nn.MultiheadAttention(8, 2, dropout=0.9, batch_first=True).train()
    x = torch.randn(2, 5, 8)
    with reevaluation_mode(attn):
        out1, out2 = attn(x, x, x)[0], attn(x, x, x)[0]
    assert torch.equal(out1, out2)
    assert attn.training
    assert not torch.equal(attn(x, x, x)[0], attn(x, x, x)[0])  # training: dropped
