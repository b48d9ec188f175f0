"""Feature taps: what they record, when, and from which call."""

import pytest
import torch
from torch import nn

from mokd_mm.core import FeatureTaps
from tests.test_core.feature_net import FeatureNet


def test_taps_record_outputs_items_and_inputs():
    net = FeatureNet()
    taps = FeatureTaps(
        net,
        dict(
            hidden='body.0',
            logits='head',
            pair=dict(module='', index=1),
            head_in=dict(module='head', input=True),
        ),
    )
    with taps.recording():
        feat, logits = net(torch.randn(2, 4))
        rec = taps.collect()
    assert rec['hidden'].shape == (2, 6)
    assert torch.equal(rec['logits'], logits) and torch.equal(rec['pair'], logits)
    assert torch.equal(rec['head_in'], feat)
    with pytest.raises(KeyError, match=r"'hidden' \(module 'body.0' ran 0 time\(s\)"):
        taps.collect()


def test_nothing_is_kept_outside_recording():
    """Validation and inference forwards keep no feature maps alive."""
    net = FeatureNet()
    taps = FeatureTaps(net, dict(hidden='body.0'))
    net(torch.randn(2, 4))
    assert taps._calls == {}
    with pytest.raises(KeyError, match='ran 0 time'):
        taps.collect()


def test_a_config_picks_which_call_of_a_module():

    class Shared(nn.Module):
        """One layer applied to two inputs, as a detection head's branch is
        applied to every feature level."""

        def __init__(self):
            super().__init__()
            self.branch = nn.Linear(3, 3)

        def forward(self, a, b):
            return self.branch(a), self.branch(b)

    net = Shared()
    taps = FeatureTaps(
        net,
        dict(
            first=dict(module='branch', call=0),
            last='branch',
            second=dict(module='branch', call=1),
            third=dict(module='branch', call=2),
        ),
    )
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    with taps.recording():
        out_a, out_b = net(a, b)
        with pytest.raises(
            KeyError,
            match=r"'third' \(module 'branch' ran 2 time\(s\), the tap "
            'reads call 2',
        ):
            taps.collect()
    del taps.specs['third']
    with taps.recording():
        net(a, b)
        rec = taps.collect()
    assert torch.equal(rec['first'], out_a)
    assert torch.equal(rec['second'], out_b) and torch.equal(rec['last'], out_b)


def test_pooled_taps():

    class Tokens(nn.Module):
        def forward(self, x):
            return x

    taps = FeatureTaps(Tokens(), dict(patches=dict(module='', pool='mean', skip_tokens=2)))
    tokens = torch.randn(2, 5, 3)
    maps = torch.randn(2, 3, 4, 4)
    with taps.recording():
        taps.modules['patches'](tokens)
        assert torch.allclose(taps.collect()['patches'], tokens[:, 2:].mean(1))
    with taps.recording():
        taps.modules['patches'](maps)
        assert torch.allclose(taps.collect()['patches'], maps.mean((2, 3)))
    with pytest.raises(ValueError, match='pool'):
        FeatureTaps(Tokens(), dict(x=dict(module='', pool='max')))


def test_unknown_path_is_named_with_a_suggestion():
    with pytest.raises(KeyError, match=r"student tap 'x'.*did you mean"):
        FeatureTaps(FeatureNet(), dict(x='haed'), owner='student')
