"""ViDT's padding masks: the official code's in the default mode, and
outputs independent of the batch in the batch-invariant one."""

import copy

import pytest
import torch
import torch.nn.functional as F

from tests.test_models.test_vidt.vidt_test_utils import TINY_VIDT, build_mmdet, make_batch

# (image sizes, as (H, W)) of batches that pad; the official and the
# max-pooled masks disagree at strides 8 and 16 for the last two.
BATCHES = [
    [(172, 236), (200, 148)],  # padded to 200 x 236
    [(1201, 96), (1066, 96)],  # rows 1201 and 1066
    [(96, 1333), (96, 1199)],  # columns 1333 and 1199
    [(160, 224), (192, 160)],
]


def official_masks(pixel_mask, patch_grid, stage_grid, level_sizes):
    """The official ViDT's token masks (naver-ai/vidt, swin_w_ram.py and
    detector.py): the body resizes the pixel mask (nearest) to the patch
    grid divided by 2 ** (stages - cross-attention stages) = 8, and that again
    to the cross-attention stage's grid; the neck resizes the pixel mask to
    each level."""

    def nearest(mask, size):
        return F.interpolate(mask[None].float(), size=size).to(torch.bool)[0]

    coarse = nearest(pixel_mask, (patch_grid[0] // 8, patch_grid[1] // 8))
    if tuple(coarse.shape[-2:]) != tuple(stage_grid):
        coarse = nearest(coarse, stage_grid)
    return coarse, [nearest(pixel_mask, size) for size in level_sizes]


def _model(**kwargs):
    cfg = copy.deepcopy(TINY_VIDT)
    cfg.update(kwargs)
    torch.manual_seed(0)
    model = build_mmdet(cfg)
    model.init_weights()
    return model.eval()


def _masks_used(model, sizes):
    """The token masks the model uses: the cross-attention stage's input and
    the decoder's key padding mask and valid ratios."""
    seen = {}
    stage = model.backbone.stages[3]
    hooks = [
        stage.register_forward_pre_hook(lambda m, args: seen.update(body=args[4], grid=args[2])),
        model.decoder.register_forward_pre_hook(
            lambda m, args, kwargs: seen.update(
                memory=kwargs['key_padding_mask'],
                ratios=kwargs['valid_ratios'],
                shapes=kwargs['spatial_shapes'],
            ),
            with_kwargs=True,
        ),
    ]
    data = model.data_preprocessor(make_batch(sizes, [1] * len(sizes)), False)
    with torch.no_grad():
        model(data['inputs'], data['data_samples'], mode='tensor')
    for hook in hooks:
        hook.remove()
    batch_h, batch_w = data['inputs'].shape[-2:]
    pixel = torch.ones(len(sizes), batch_h, batch_w, dtype=torch.bool)
    for i, (h, w) in enumerate(sizes):
        pixel[i, :h, :w] = False
    return seen, pixel, (-(-batch_h // 4), -(-batch_w // 4))


@pytest.mark.parametrize('sizes', BATCHES, ids=str)
def test_default_masks_are_the_official_ones(sizes):
    model = _model()
    seen, pixel, patch_grid = _masks_used(model, sizes)
    level_sizes = [tuple(s) for s in seen['shapes'].tolist()]
    body, levels = official_masks(pixel, patch_grid, seen['grid'], level_sizes)
    assert torch.equal(seen['body'], body)
    assert torch.equal(seen['memory'], torch.cat([m.flatten(1) for m in levels], 1))
    ratios = torch.stack(
        [
            torch.stack([(~m[:, 0, :]).sum(1) / m.shape[2], (~m[:, :, 0]).sum(1) / m.shape[1]], -1)
            for m in levels
        ],
        1,
    )
    torch.testing.assert_close(seen['ratios'], ratios)


def test_the_official_masks_differ_from_covered_ones_where_the_issue_said():
    """The two rules disagree at strides 8 and 16 for COCO-like sizes (why the
    mode matters), and agree when the padded sides are multiples of 64."""
    from mokd_mm.models.vidt.padding import covered_token_mask, nearest_token_mask

    for sizes, agree in [
        ([(1201, 96), (1066, 96)], False),
        ([(96, 1333), (96, 1199)], False),
        ([(192, 256), (128, 192)], True),
    ]:
        h = max(s[0] for s in sizes)
        w = max(s[1] for s in sizes)
        pixel = torch.ones(len(sizes), h, w, dtype=torch.bool)
        for i, (a, b) in enumerate(sizes):
            pixel[i, :a, :b] = False
        same = [
            torch.equal(
                nearest_token_mask(pixel, (-(-h // s), -(-w // s))), covered_token_mask(pixel, s)
            )
            for s in (8, 16)
        ]
        assert all(same) if agree else not all(same)


def test_batch_invariant_outputs_do_not_depend_on_the_batch():
    model = _model(padding_masks='batch_invariant')
    image = make_batch([(96, 128)], [1])
    bigger = make_batch([(96, 128), (160, 192)], [1, 1])
    bigger['inputs'][0] = image['inputs'][0]
    outputs = []
    for batch in (image, bigger):
        data = model.data_preprocessor(batch, False)
        with torch.no_grad():
            cls, box = model(data['inputs'], data['data_samples'], mode='tensor')
        outputs.append((cls[:, :1], box[:, :1]))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-4, rtol=1e-4)
    # The official mode does not have this property.
    official = _model()
    got = []
    for batch in (image, bigger):
        data = official.data_preprocessor(batch, False)
        with torch.no_grad():
            got.append(official(data['inputs'], data['data_samples'], mode='tensor')[0][:, :1])
    assert not torch.allclose(got[0], got[1], atol=1e-4)


def test_the_mode_is_one_option_of_the_detector():
    assert _model(padding_masks='batch_invariant').backbone.padding_masks == 'batch_invariant'
    cfg = copy.deepcopy(TINY_VIDT)
    cfg['backbone']['padding_masks'] = 'batch_invariant'
    with pytest.raises(ValueError, match='backbone.padding_masks'):
        build_mmdet(cfg)
    with pytest.raises(ValueError, match='padding_masks must be one of'):
        _model(padding_masks='invariant')


def test_masked_group_norm_is_group_norm_on_the_valid_tokens():
    from mokd_mm.models.vidt.vidt import masked_group_norm

    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(4, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 8, 5, 6)
    none = torch.zeros(2, 5, 6, dtype=torch.bool)
    torch.testing.assert_close(masked_group_norm(x, norm, none), norm(x))
    padding = none.clone()
    padding[0, 3:] = True
    padding[0, :, 4:] = True
    out = masked_group_norm(x, norm, padding)
    torch.testing.assert_close(out[0, :, :3, :4], norm(x[:1, :, :3, :4])[0])
    torch.testing.assert_close(out[1], norm(x[1:])[0])
