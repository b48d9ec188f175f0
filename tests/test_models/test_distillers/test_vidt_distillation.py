"""MoKD on ViDT through the real configs/mokd detection configs, with tiny
ViDTs in place of the COCO-sized ones."""

import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope

from tests.conftest import REPO, assert_the_faster_objective_loses_weight, record_balancer_updates
from tests.test_models.test_vidt.vidt_test_utils import TINY_ARCH, make_batch, tiny_vidt_cfg

MOKD_DIR = osp.join(REPO, 'configs/mokd')
# Two image sizes (padding) and an image without objects.
SIZES, NUM_BOXES = [(64, 96), (96, 64), (80, 80)], [3, 2, 0]


def _tiny(backbone_dims: int) -> dict:
    """A tiny ViDT with the real neck width (256) and decoder depth (6), so
    the configs' taps and connectors apply unchanged."""
    cfg = tiny_vidt_cfg(embed_dims=256, num_decoder_layers=6)
    arch = dict(TINY_ARCH, embed_dims=backbone_dims)
    cfg['backbone']['arch'] = arch
    return cfg


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    torch.manual_seed(1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        teacher = MODELS.build(_tiny(32))
    teacher.init_weights()
    path = tmp_path_factory.mktemp('vidt_teacher') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return str(path)


def _distiller(config, teacher_file, **teacher_overrides):
    cfg = Config.fromfile(osp.join(MOKD_DIR, config)).model.to_dict()
    cfg['student'] = _tiny(16)
    cfg['teacher'] = dict(_tiny(32), **teacher_overrides)
    cfg['teacher_ckpt'] = teacher_file
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_mokd_losses_step_and_predict(teacher_file):
    model = _distiller('vidt_nano.py', teacher_file)
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), True)
    model.train()
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    for key in (
        'student.loss_cls',
        'student.loss_bbox',
        'student.loss_iou',
        'student.d0.loss_cls',
        'student.d5.loss_iou',
        'distill.loss_patch',
        'distill.loss_neck',
        'distill.loss_head_cls',
        'distill.loss_head_box',
    ):
        assert key in losses and torch.isfinite(losses[key]).all(), key
    assert losses['distill.loss_head_cls'] > 0 and losses['distill.loss_patch'] > 0
    # The config gives no connector sizes: they come from the tapped modules
    # (ConvModule out_channels, decoder layers' embed_dims).
    for loss in ('loss_patch', 'loss_neck'):
        for connector in model.distill_losses[loss].connectors:
            assert (connector.student_dim, connector.teacher_dim, connector.dim) == (256, 256, 512)

    cfg = Config.fromfile(osp.join(MOKD_DIR, 'vidt_nano.py'))
    wrapper_cfg = cfg.optim_wrapper.to_dict()
    with DefaultScope.overwrite_default_scope('mmdet'):
        wrapper = build_optim_wrapper(model, wrapper_cfg)
    head_before = model.student.bbox_head.cls_branches[0].weight.detach().clone()
    updates = record_balancer_updates(wrapper)
    log_vars = model.train_step(make_batch(SIZES, NUM_BOXES), wrapper)
    assert log_vars['mokd/pi_distill'] == 0.5  # applied; then learned:
    ((before, after),) = updates
    assert_the_faster_objective_loses_weight(wrapper.balancer, before, after)
    assert not torch.equal(head_before, model.student.bbox_head.cls_branches[0].weight)

    model.eval()
    results = model.val_step(make_batch(SIZES, NUM_BOXES))
    assert len(results) == 3
    for result, (h, w) in zip(results, SIZES):
        boxes = result.pred_instances.bboxes
        assert len(boxes) == 5  # the tiny config's max_per_img
        assert (boxes[:, 2] <= w + 1e-3).all() and (boxes[:, 3] <= h + 1e-3).all()


@pytest.mark.parametrize(
    'config',
    [
        'vidt/token-matching_vidt-base_vidt-nano_4xb4-50e_coco.py',
        'vidt/vkd_vidt-base_vidt-nano_4xb4-50e_coco.py',
        'vidt/mokd-single-projector_vidt-base_vidt-nano_4xb4-50e_coco.py',
    ],
)
def test_baselines_and_ablations_run(config, teacher_file):
    model = _distiller(config, teacher_file).train()
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    distill = [k for k in losses if k.startswith('distill.')]
    assert distill and all(torch.isfinite(losses[k]) for k in distill)


def test_different_det_token_counts_fail_at_build(teacher_file):
    with pytest.raises(ValueError, match=r'student.num_queries=6 but teacher.num_queries=9'):
        _distiller('vidt_nano.py', None, num_queries=9)


def _mean_token_distance(student, teacher):
    """Per stream: the mean over tokens of each token's L2 distance, tokens
    along the last axis for sequences and along the channel axis for maps."""
    if student.dim() == 4:
        student, teacher = student.flatten(2).transpose(1, 2), teacher.flatten(2).transpose(1, 2)
    return (student - teacher).pow(2).sum(-1).sqrt().mean()


def test_token_matching_counts_the_body_det_tokens_twice_as_the_official_loss(teacher_file):
    """naver-ai/vidt sums, under one square root: the 4 patch levels, the
    body [DET] tokens, and the decoder's intermediate list, which starts with
    the decoder's input (the body [DET] tokens again) and has one entry per
    decoder layer after it; times 4."""
    model = _distiller('vidt/token-matching_vidt-base_vidt-nano_4xb4-50e_coco.py', teacher_file)
    model.train()
    data = model.data_preprocessor(make_batch(SIZES, NUM_BOXES), True)
    inputs, samples = data['inputs'], data['data_samples']
    teacher = model.run_teacher(inputs, samples)
    queries = []
    hook = model.student.decoder.register_forward_pre_hook(
        lambda module, args, kwargs: queries.append(kwargs['query']), with_kwargs=True
    )
    with model.taps['student'].recording():
        model.student(inputs, samples, mode='loss')
        student = model.taps['student'].collect()
    hook.remove()
    loss = model.losses(inputs, samples, teacher)['distill.loss_tokens']

    patches = sum(
        _mean_token_distance(student[f'patch{i}'], teacher[f'patch{i}']) for i in range(4)
    )
    body = _mean_token_distance(student['det_body'], teacher['det_body'])
    decoder_list = [body] + [
        _mean_token_distance(student[f'dec{i}'], teacher[f'dec{i}']) for i in range(6)
    ]
    official = 4.0 * torch.sqrt(patches + body + sum(decoder_list))
    once = 4.0 * torch.sqrt(patches + sum(decoder_list))
    assert torch.allclose(loss, official, rtol=1e-6)
    assert not torch.allclose(loss, once, rtol=1e-3)  # the stream really counts twice
    # The det_body tap is the decoder's input query, the stream's second copy.
    assert torch.equal(queries[0], student['det_body'])
