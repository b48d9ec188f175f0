"""Tests of the Swin body with the Reconfigured Attention Module."""

import pytest
import torch
from mmdet.structures import DetDataSample

from mokd_mm.models.vidt import ReconfiguredAttention, SwinRAM, padding_mask_from_samples
from mokd_mm.models.vidt.padding import covered_token_mask
from mokd_mm.models.vidt.swin_ram import BLOCKED
from tests.test_models.test_vidt.vidt_test_utils import TINY_ARCH


def build_body(**kwargs) -> SwinRAM:
    torch.manual_seed(0)
    cfg = dict(arch=TINY_ARCH, num_det_tokens=5, det_pos_dims=32, extra_level_channels=32)
    cfg.update(kwargs)
    body = SwinRAM(**cfg)
    body.init_weights()
    return body.eval()


def test_output_levels_tokens_and_positions():
    body = build_body()
    x = torch.randn(2, 3, 100, 140)
    with torch.no_grad():
        levels, det, det_pos = body(x)
    # Strides 8, 16, 32, 64 with ceil rounding; channels 2C, 4C, 8C, extra.
    assert [tuple(level.shape) for level in levels] == [
        (2, 32, 13, 18),
        (2, 64, 7, 9),
        (2, 128, 4, 5),
        (2, 32, 2, 3),
    ]
    assert body.out_channels == [32, 64, 128, 32]
    assert body.out_strides == [8, 16, 32, 64]
    assert det.shape == (2, 5, 128) and body.det_channels == 128
    assert det_pos is body.det_pos_embed and det_pos.shape == (1, 5, 32)


def _run_padded(body, image, batch_hw, pad_fill):
    """Run ``image`` alone in the top-left corner of a padded batch."""
    _, h, w = image.shape
    x = torch.full((1, 3, *batch_hw), pad_fill)
    x[0, :, :h, :w] = image
    mask = torch.ones((1, *batch_hw), dtype=torch.bool)
    mask[0, :h, :w] = False
    with torch.no_grad():
        return body(x, mask)


def _valid_parts(outputs, h, w):
    levels, det, _ = outputs
    crops = [level[..., : -(-h // s), : -(-w // s)] for level, s in zip(levels, (8, 16, 32, 64))]
    return crops, det


def test_batch_invariant_mode_ignores_padding_content_and_size():
    body = build_body(padding_masks='batch_invariant')
    image = torch.randn(3, 64, 128)
    with torch.no_grad():
        reference = _valid_parts(body(image[None]), 64, 128)
    for batch_hw, fill in [((128, 192), 0.0), ((192, 128), 7.0), ((64, 256), -3.0)]:
        crops, det = _valid_parts(_run_padded(body, image, batch_hw, fill), 64, 128)
        for got, want in zip(crops, reference[0]):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(det, reference[1], atol=1e-5, rtol=1e-5)


def test_official_window_behaviour_sees_padding():
    """In the official mode (the default) patch windows that overlap the
    padding change with its content, as in the official ViDT."""
    body = build_body()
    image = torch.randn(3, 64, 128)
    zeros = _valid_parts(_run_padded(body, image, (128, 192), 0.0), 64, 128)
    sevens = _valid_parts(_run_padded(body, image, (128, 192), 7.0), 64, 128)
    assert not torch.allclose(zeros[0][0], sevens[0][0], atol=1e-3)


def test_patch_tokens_never_attend_to_det_tokens():
    body = build_body()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        levels, det, _ = body(x)
        body.det_tokens.add_(torch.randn_like(body.det_tokens))
        body.det_pos_embed.add_(torch.randn_like(body.det_pos_embed))
        levels2, det2, _ = body(x)
    for a, b in zip(levels, levels2):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(det, det2)


@pytest.mark.parametrize('stages, sees_image', [((), False), ((3,), True), ((0,), True)])
def test_det_tokens_see_patches_only_in_cross_attention_stages(stages, sees_image):
    body = build_body(cross_attn_stages=stages)
    with torch.no_grad():
        _, det_a, _ = body(torch.randn(1, 3, 64, 96))
        _, det_b, _ = body(torch.randn(1, 3, 64, 96))
    assert torch.allclose(det_a, det_b, atol=1e-6) is not sees_image


def test_attention_gives_padded_cross_keys_zero_weight():
    torch.manual_seed(0)
    attn = ReconfiguredAttention(8, 2, window_size=2).eval()
    windows = torch.randn(4, 4, 8)  # (B * num_windows, L, C)
    det = torch.randn(1, 3, 8)
    patches = torch.randn(1, 16, 8)
    padded = torch.zeros(1, 1, 1, 16 + 3)
    padded[..., 10:16] = BLOCKED  # the additive key mask of padded patches
    changed = patches.clone()
    changed[:, 10:] = 100 * torch.randn(1, 6, 8)
    with torch.no_grad():
        _, det_out = attn(windows, det, None, patches, padded)
        _, det_changed = attn(windows, det, None, changed, padded)
        _, det_unmasked = attn(windows, det, None, changed, None)
    torch.testing.assert_close(det_out, det_changed)
    assert not torch.allclose(det_out, det_unmasked)


def test_patch_merging_widens_det_tokens():
    body = build_body()
    merge = body.stages[0].downsample
    det = torch.randn(2, 5, 16)
    patch = torch.randn(2, 6 * 5, 16)
    merged, hw, det_merged = merge(patch, (6, 5), det)
    assert hw == (3, 3) and merged.shape == (2, 9, 32)
    assert det_merged.shape == (2, 5, 32)
    # A [DET] token is merged as four copies of itself.
    torch.testing.assert_close(det_merged, merge.reduction(merge.norm(det.repeat(1, 1, 4))))


def test_padding_masks_from_samples():
    samples = []
    for hw in [(40, 64), (64, 30)]:
        sample = DetDataSample(metainfo=dict(img_shape=hw, batch_input_shape=(64, 64)))
        samples.append(sample)
    mask = padding_mask_from_samples(samples, torch.device('cpu'))
    assert mask.shape == (2, 64, 64)
    assert mask[0, :40].logical_not().all() and mask[0, 40:].all()
    assert mask[1, :, :30].logical_not().all() and mask[1, :, 30:].all()
    tokens = covered_token_mask(mask, 8)
    # A token is valid when any of its pixels is: ceil(40/8)=5, ceil(30/8)=4.
    assert tokens[0, :5].logical_not().all() and tokens[0, 5:].all()
    assert tokens[1, :, :4].logical_not().all() and tokens[1, :, 4:].all()
    same = [DetDataSample(metainfo=dict(img_shape=(8, 8), batch_input_shape=(8, 8)))]
    assert padding_mask_from_samples(same, torch.device('cpu')) is None


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(arch='huge'), 'Unknown arch'),
        (dict(arch=dict(embed_dims=16, depths=(1, 1))), 'custom arch'),
        (dict(cross_attn_stages=(4,)), 'cross_attn_stages'),
        (dict(cross_attn_stages=(-1,)), 'cross_attn_stages'),
        (dict(num_det_tokens=0), 'num_det_tokens'),
        (dict(padding_masks='maybe'), 'padding_masks'),
    ],
)
def test_bad_config_names_the_key(kwargs, message):
    cfg = dict(arch=TINY_ARCH)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SwinRAM(**cfg)


def test_variant_settings():
    with torch.device('meta'):
        nano = SwinRAM(arch='nano')
        base = SwinRAM(arch='base')
    assert nano.out_channels == [96, 192, 384, 256]
    assert [len(s.blocks) for s in nano.stages] == [2, 2, 6, 2]
    assert base.det_channels == 1024
    assert base.stages[2].blocks[0].attn.num_heads == 16
    # Stochastic depth reaches the variant's rate at the last block.
    assert base.stages[3].blocks[1].ffn.dropout_layer.drop_prob == pytest.approx(0.3)


@pytest.mark.parametrize('mode', ['official', 'batch_invariant'])
def test_every_attention_reaches_sdpa_in_four_dimensions(monkeypatch, mode):
    """torch's fused CPU attention takes only 4-D queries and masks; any
    other shape silently falls back to a several times slower path."""
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        calls.append((q.dim(), None if attn_mask is None else attn_mask.dim()))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(torch.nn.functional, 'scaled_dot_product_attention', spy)
    body = build_body(padding_masks=mode)
    mask = torch.zeros(2, 100, 140, dtype=torch.bool)
    mask[1, 60:, 90:] = True
    with torch.no_grad():
        body(torch.randn(2, 3, 100, 140), mask)
    assert len(calls) == 2 * sum(TINY_ARCH['depths'])
    assert set(calls) <= {(4, 4), (4, None)} and (4, 4) in calls
