import subprocess
import sys

import pytest
import torch
from torch import nn

from mokd_mm.core import FeatureTaps
from mokd_mm.core.reevaluation import reevaluation_mode


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        feat = self.body(x)
        return feat, self.head(feat)


def test_taps_record_outputs_items_and_inputs():
    net = Net()
    taps = FeatureTaps(net, dict(
        hidden='body.0', logits='head', pair=dict(module='', index=1),
        head_in=dict(module='head', input=True)))
    feat, logits = net(torch.randn(2, 4))
    rec = taps.collect()
    assert rec['hidden'].shape == (2, 6)
    assert torch.equal(rec['logits'], logits) and torch.equal(rec['pair'], logits)
    assert torch.equal(rec['head_in'], feat)
    with pytest.raises(KeyError, match='did not run'):
        taps.collect()
    taps.remove()
    net(torch.randn(2, 4))
    with pytest.raises(KeyError):
        taps.collect()


def test_pooled_taps():

    class Tokens(nn.Module):

        def forward(self, x):
            return x

    taps = FeatureTaps(Tokens(), dict(
        patches=dict(module='', pool='mean', skip_tokens=2)))
    tokens = torch.randn(2, 5, 3)
    taps.modules['patches'](tokens)
    assert torch.allclose(taps.collect()['patches'], tokens[:, 2:].mean(1))
    maps = torch.randn(2, 3, 4, 4)
    taps.modules['patches'](maps)
    assert torch.allclose(taps.collect()['patches'], maps.mean((2, 3)))
    with pytest.raises(ValueError, match='pool'):
        FeatureTaps(Tokens(), dict(x=dict(module='', pool='max')))


def test_unknown_path_is_named_with_a_suggestion():
    with pytest.raises(KeyError, match=r"student tap 'x'.*did you mean"):
        FeatureTaps(Net(), dict(x='haed'), owner='student')


def test_reevaluation_leaves_no_trace():
    net = Net().train()
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


def test_core_imports_without_openmmlab():
    # Emulate an environment without OpenMMLab.
    code = ('import importlib.util, sys\n'
            'real = importlib.util.find_spec\n'
            'importlib.util.find_spec = lambda n, *a: None if n.split(".")[0] in '
            '("mmengine", "mmcv", "mmdet", "mmpretrain") else real(n, *a)\n'
            'class Block:\n'
            '    def find_spec(self, name, path=None, target=None):\n'
            '        if name.split(".")[0] in ("mmengine", "mmcv", "mmdet", "mmpretrain"):\n'
            '            raise ImportError(name)\n'
            'sys.meta_path.insert(0, Block())\n'
            'import mokd_mm.core\n'
            'from mokd_mm.core import CAGrad, IndefiniteSubspaceConnector, MoKDAmortized\n'
            'assert not any(m.startswith("mmengine") for m in sys.modules)\n')
    subprocess.run([sys.executable, '-c', code], check=True)
