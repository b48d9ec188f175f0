"""A teacher that preprocesses differently from the student (another mean
and std, another channel order, another pad value and size divisor) sees
the batch exactly as its own preprocessing would have made it."""

import copy

import torch
from mmengine.config import Config

from tests.conftest import MOKD_CFG, TEACHER_CFG, build_in_scope
from tests.test_engine.test_balancers_in_training import _batch
from tests.test_models.test_vidt.vidt_test_utils import build_mmdet, make_batch, tiny_vidt_cfg


def _teacher_alone_and_in_distiller(distiller_cfg, scope, batch):
    torch.manual_seed(0)
    distiller = build_in_scope(distiller_cfg, scope).train()
    data = distiller.data_preprocessor(copy.deepcopy(batch), True)
    features = distiller.run_teacher(data['inputs'], data['data_samples'])
    teacher = distiller.teacher
    alone = teacher.data_preprocessor(copy.deepcopy(batch), False)
    recorded, spec = [], distiller.taps['teacher'].specs['logits']
    module = distiller.taps['teacher'].modules['logits']
    hook = module.register_forward_hook(lambda m, i, o: recorded.append(spec.select(o)))
    with torch.no_grad():
        teacher(alone['inputs'], alone['data_samples'], mode='tensor')
    hook.remove()
    return features['logits'], recorded[-1]


def test_a_teacher_with_its_own_mean_std_and_channel_order():
    cfg = Config.fromfile(MOKD_CFG)
    model = cfg.model.to_dict()
    teacher = Config.fromfile(TEACHER_CFG).model.to_dict()
    teacher['data_preprocessor'] = dict(
        type='ClsDataPreprocessor', num_classes=4, mean=[10, 20, 30], std=[50, 60, 70]
    )  # BGR kept (to_rgb False), where the student's converts to RGB
    model.update(teacher=teacher, teacher_ckpt=None, data_preprocessor=cfg.data_preprocessor)
    in_distiller, alone = _teacher_alone_and_in_distiller(model, 'mmpretrain', _batch(0))
    torch.testing.assert_close(in_distiller, alone, rtol=1e-5, atol=1e-5)


def test_a_caffe_style_detection_teacher_with_its_own_padding():
    student = tiny_vidt_cfg()
    teacher = tiny_vidt_cfg()
    teacher['data_preprocessor'] = dict(
        type='DetDataPreprocessor',
        mean=[103.53, 116.28, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=7,
    )
    model = dict(
        type='MoKDDistiller',
        student=student,
        teacher=teacher,
        teacher_taps=dict(logits=dict(module='bbox_head', index=0)),
        student_taps=dict(logits=dict(module='bbox_head', index=0)),
        distill_losses=dict(
            loss_cls=dict(type='SigmoidKLDivergenceLoss', student='logits', teacher='logits')
        ),
    )
    batch = make_batch([(64, 96), (90, 50)], [2, 1])
    in_distiller, alone = _teacher_alone_and_in_distiller(model, 'mmdet', batch)
    torch.testing.assert_close(in_distiller, alone, rtol=1e-4, atol=1e-5)
    assert build_mmdet(teacher).data_preprocessor.pad_size_divisor == 32
