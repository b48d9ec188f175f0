"""DeiTDistillationHead: the class head trains on the labels, the
distillation head is left to a tap, and evaluation averages both."""

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import DeiTClsHead
from mmpretrain.structures import DataSample

from mokd_mm.core import FeatureTaps
from mokd_mm.models.heads import DeiTDistillationHead

NUM_CLASSES, CHANNELS, BATCH = 5, 16, 6


@pytest.fixture
def head():
    torch.manual_seed(0)
    head = DeiTDistillationHead(
        num_classes=NUM_CLASSES,
        in_channels=CHANNELS,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
    )
    head.init_weights()
    return head


@pytest.fixture
def tokens():
    generator = torch.Generator().manual_seed(1)
    return (
        torch.randn(BATCH, CHANNELS, generator=generator),
        torch.randn(BATCH, CHANNELS, generator=generator),
    )


def samples_with_labels(labels):
    return [DataSample().set_gt_label(int(label)) for label in labels]


def smoothed_cross_entropy(logits, targets, eps=0.1):
    """Cross-entropy against (1 - eps) * targets + eps / K."""
    smoothed = (1 - eps) * targets + eps / logits.shape[1]
    return -(smoothed * F.log_softmax(logits, 1)).sum(1).mean()


def test_training_loss_is_the_class_head_cross_entropy(head, tokens):
    cls_token, dist_token = tokens
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    losses = head.loss(((cls_token, dist_token),), samples_with_labels(labels))
    assert set(losses) == {'loss'}
    expected = smoothed_cross_entropy(
        head.layers.head(cls_token), F.one_hot(labels, NUM_CLASSES).float()
    )
    torch.testing.assert_close(losses['loss'], expected)

    # The distillation token does not enter the loss.
    other = head.loss(((cls_token, 3 * dist_token + 1),), samples_with_labels(labels))['loss']
    torch.testing.assert_close(other, losses['loss'])
    losses['loss'].backward()
    assert head.layers.head.weight.grad.abs().sum() > 0
    assert head.layers.head_dist.weight.grad is None


def test_training_loss_takes_mixed_soft_targets(head, tokens):
    """Mixup / CutMix turn labels into gt_score rows."""
    cls_token, dist_token = tokens
    scores = torch.softmax(torch.randn(BATCH, NUM_CLASSES), 1)
    samples = [DataSample().set_gt_score(s) for s in scores]
    loss = head.loss(((cls_token, dist_token),), samples)['loss']
    torch.testing.assert_close(loss, smoothed_cross_entropy(head.layers.head(cls_token), scores))


def test_distillation_logits_are_tapped_during_the_loss(head, tokens):
    cls_token, dist_token = tokens
    taps = FeatureTaps(head, dict(dist_logits='layers.head_dist'))
    labels = torch.arange(BATCH) % NUM_CLASSES
    with taps.recording():
        head.loss(((cls_token, dist_token),), samples_with_labels(labels))
        recorded = taps.collect()['dist_logits']
    assert recorded.shape == (BATCH, NUM_CLASSES)
    torch.testing.assert_close(recorded, head.layers.head_dist(dist_token))
    assert recorded.requires_grad


def test_evaluation_averages_both_heads(head, tokens):
    cls_token, dist_token = tokens
    head.eval()
    with torch.no_grad():
        expected = (head.layers.head(cls_token) + head.layers.head_dist(dist_token)) / 2
        torch.testing.assert_close(head(((cls_token, dist_token),)), expected)
        predictions = head.predict(((cls_token, dist_token),))
    scores = torch.stack([p.pred_score for p in predictions])
    torch.testing.assert_close(scores, torch.softmax(expected, 1))
    assert [int(p.pred_label) for p in predictions] == expected.argmax(1).tolist()


def test_state_dict_is_mmpretrain_deit_head_compatible(head, tokens):
    """A trained student evaluates the same under mmpretrain's head."""
    reference = DeiTClsHead(num_classes=NUM_CLASSES, in_channels=CHANNELS)
    reference.load_state_dict(head.state_dict(), strict=True)
    head.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(reference((tokens,)), head((tokens,)))


def test_initialisation_is_deit_truncated_normal():
    head = DeiTDistillationHead(num_classes=200, in_channels=128)
    head.init_weights()
    for linear in (head.layers.head, head.layers.head_dist):
        assert 0.015 < linear.weight.std() < 0.025
        assert linear.weight.abs().max() <= 2.0  # truncated at +-2
        assert torch.all(linear.bias == 0)


def test_tokens_of_another_backbone_output_are_refused(head):
    pooled = torch.randn(BATCH, CHANNELS)  # out_type='avg_featmap'
    with pytest.raises(ValueError, match="out_type='cls_token'"):
        head((pooled,))
