"""Tests of the ViDT detector: modes, prediction levels, hook taps."""

import pytest
import torch

from mokd_mm.models.vidt import TokenProjection, ViDT
from tests.test_models.test_vidt.vidt_test_utils import build_mmdet, make_batch, tiny_vidt_cfg

# Two image sizes (padding in the batch) and one image without objects.
SIZES = [(64, 96), (96, 64), (80, 80)]
NUM_BOXES = [3, 2, 0]


def build_vidt(cfg=None) -> ViDT:
    torch.manual_seed(0)
    model = build_mmdet(cfg or tiny_vidt_cfg())
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def model():
    return build_vidt()


def test_loss_mode_covers_all_levels_and_backpropagates(model):
    model.train()
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), True)
    losses = model(**data, mode='loss')
    # 2 decoder layers + the body level: d0 (body), d1, and the last level.
    expected = {f'{p}loss_{n}' for p in ('', 'd0.', 'd1.') for n in ('cls', 'bbox', 'iou')}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    model.zero_grad()
    sum(losses.values()).backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    # Gradients reach the body's [DET] tokens, the cross-attended last
    # stage, every projection, every decoder layer and the level-0 head.
    for name in (
        'backbone.det_tokens',
        'backbone.det_pos_embed',
        'backbone.stages.3.blocks.1.attn.qkv.weight',
        'input_projs.3.conv.weight',
        'det_token_proj.conv.weight',
        'det_pos_proj.conv.weight',
        'reference_points_fc.weight',
        'decoder.layers.1.cross_attn.sampling_offsets.weight',
        'bbox_head.cls_branches.0.weight',
        'bbox_head.reg_branches.0.4.weight',
    ):
        assert name in grads and grads[name].abs().sum() > 0, name


def test_image_without_objects_only_has_classification_loss(model):
    model.train()
    data = model.data_preprocessor(make_batch([(64, 64)], [0]), True)
    losses = model(**data, mode='loss')
    assert losses['loss_cls'] > 0
    assert losses['loss_bbox'] == 0 and losses['loss_iou'] == 0


def test_predict_mode_returns_boxes_inside_each_image(model):
    model.eval()
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 3
    for (h, w), result in zip(SIZES, results):
        pred = result.pred_instances
        assert len(pred) == 5  # test_cfg.max_per_img
        assert pred.bboxes.shape == (5, 4)
        assert (pred.bboxes[:, 0::2] <= w + 1e-4).all()
        assert (pred.bboxes[:, 1::2] <= h + 1e-4).all()
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < 80)).all()


def test_tensor_mode_and_distillation_taps(model):
    model.eval()
    taps = {}
    paths = [f'input_projs.{i}' for i in range(4)] + [
        'det_token_proj',
        'det_pos_proj',
        'decoder.layers.0',
        'decoder.layers.1',
        'decoder',
        'bbox_head',
    ]
    modules = dict(model.named_modules())
    handles = [
        modules[path].register_forward_hook(lambda m, i, o, path=path: taps.__setitem__(path, o))
        for path in paths
    ]
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), False)
    with torch.no_grad():
        cls_scores, boxes = model(**data, mode='tensor')
    for handle in handles:
        handle.remove()
    B, N = 3, 6
    assert cls_scores.shape == (3, B, N, 80) and boxes.shape == (3, B, N, 4)
    assert [tuple(taps[f'input_projs.{i}'].shape) for i in range(4)] == [
        (B, 64, 12, 12),
        (B, 64, 6, 6),
        (B, 64, 3, 3),
        (B, 64, 2, 2),
    ]
    assert taps['det_token_proj'].shape == (B, N, 64)
    assert taps['det_pos_proj'].shape == (1, N, 64)
    assert taps['decoder'][0].shape == (2, B, N, 64)
    torch.testing.assert_close(taps['decoder'][0][1], taps['decoder.layers.1'])
    # The head's level 0 is the projected body [DET] tokens, level 2 the
    # last decoder layer.
    head = model.bbox_head
    torch.testing.assert_close(cls_scores[0], head.cls_branches[0](taps['det_token_proj']))
    torch.testing.assert_close(cls_scores[2], head.cls_branches[2](taps['decoder.layers.1']))
    assert taps['bbox_head'][0] is cls_scores
    assert ((boxes > 0) & (boxes < 1)).all()


def _focal(logits, targets, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss per element (Lin et al.), as DETR-family code writes it."""
    p = logits.sigmoid()
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def test_class_term_is_the_focal_loss_over_the_80_mmdet_columns(model):
    """The last level's class loss by hand: Hungarian matching on the
    focal (2), L1 (5) and GIoU (2) costs, one-hot targets over mmdet's 80
    contiguous classes (the official ViDT has 91 raw-id columns, 11 never
    positive; docs/design.md), summed and divided by the number of boxes,
    times 2."""
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_convert, generalized_box_iou

    model.train()
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), True)
    outputs = []
    hook = model.bbox_head.register_forward_hook(lambda m, i, o: outputs.append(o))
    losses = model(**data, mode='loss')
    hook.remove()
    cls_scores, boxes = (o[-1].detach() for o in outputs[0])
    assert cls_scores.shape[-1] == 80

    total = 0.0
    for logits, pred, sample in zip(cls_scores, boxes, data['data_samples']):
        h, w = sample.img_shape
        gt = sample.gt_instances
        targets = torch.zeros_like(logits)
        if len(gt):
            gt_boxes = gt.bboxes / torch.tensor([w, h, w, h])
            p = logits.sigmoid()[:, gt.labels]
            pos = 0.25 * (1 - p) ** 2 * -(p + 1e-12).log()
            neg = 0.75 * p**2 * -(1 - p + 1e-12).log()
            cost = (
                2 * (pos - neg)
                + 5 * torch.cdist(pred, box_convert(gt_boxes, 'xyxy', 'cxcywh'), p=1)
                - 2 * generalized_box_iou(box_convert(pred, 'cxcywh', 'xyxy'), gt_boxes)
            )
            rows, cols = linear_sum_assignment(cost.numpy())
            targets[torch.as_tensor(rows), gt.labels[torch.as_tensor(cols)]] = 1.0
        total = total + _focal(logits, targets).sum()
    expected = 2.0 * total / sum(NUM_BOXES)
    torch.testing.assert_close(
        losses['loss_cls'].detach().reshape(()), expected, rtol=1e-5, atol=1e-6
    )


def test_token_projection_normalizes_over_tokens():
    torch.manual_seed(0)
    proj = TokenProjection(16, 32)
    tokens = torch.randn(2, 7, 16)
    out = proj(tokens)
    assert out.shape == (2, 7, 32)
    # GroupNorm statistics span all tokens of a sample: changing one token
    # changes the others' outputs.
    changed = tokens.clone()
    changed[:, 0] += 10
    assert not torch.allclose(proj(changed)[:, 1:], out[:, 1:])


def test_query_count_and_head_overrides_are_validated():
    cfg = tiny_vidt_cfg()
    cfg['backbone']['num_det_tokens'] = 9
    with pytest.raises(ValueError, match='num_det_tokens'):
        build_mmdet(cfg)
    cfg = tiny_vidt_cfg()
    cfg['backbone']['padding_masks'] = 'batch_invariant'
    with pytest.raises(ValueError, match=r"backbone.padding_masks \('batch_invariant'\)"):
        build_mmdet(cfg)
    cfg = tiny_vidt_cfg()
    cfg['bbox_head']['num_pred_layer'] = 3
    with pytest.raises(ValueError, match='num_pred_layer'):
        build_mmdet(cfg)
    cfg = tiny_vidt_cfg()
    cfg['num_queries'] = 0
    with pytest.raises(ValueError, match='num_queries'):
        build_mmdet(cfg)


def test_num_queries_sets_det_tokens_and_head_levels():
    cfg = tiny_vidt_cfg()
    cfg['num_queries'] = 11
    cfg['decoder']['num_layers'] = 3
    model = build_mmdet(cfg)
    assert model.backbone.det_tokens.shape[1] == 11
    assert len(model.bbox_head.cls_branches) == 4
    assert len(model.bbox_head.reg_branches) == 4
    # Box refinement: every level has its own branches.
    assert model.bbox_head.cls_branches[0] is not model.bbox_head.cls_branches[1]
