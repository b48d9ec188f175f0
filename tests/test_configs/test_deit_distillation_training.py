"""The DeiT <- RegNetY configs trained for real at toy size: a DeiT with
embed 48, depth 2, 32 px images and 8 px patches, and timm's regnety_002
as the teacher, loaded from a timm-format file the way the real config
loads RegNetY-160. Data: the generated shape set (4 classes)."""

import math
import os.path as osp
import sys

import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from tests.conftest import REPO
from tests.test_configs.test_regnety_teacher import randomize_norms
from tests.test_tools.test_train_test_export import _run, _scalars, _train

NUM_CLASSES = 4
TEACHER_CHANNELS = 368  # regnety_002's pooled feature
STUDENT_CHANNELS = 48


def deit_config(method: str) -> str:
    return osp.join(REPO, f'configs/mokd/deit/{method}_regnety160_deit-tiny_4xb256-300e_in1k.py')


@pytest.fixture(scope='module')
def tiny_teacher(tmp_path_factory):
    """A regnety_002 state dict file and a teacher config that inherits the
    RegNetY-160 config; the distillation configs build it without weights
    and load the file as ``teacher_ckpt``."""
    torch.manual_seed(0)
    timm_model = timm.create_model('regnety_002', num_classes=NUM_CLASSES)
    with torch.no_grad():
        randomize_norms(timm_model)
    directory = tmp_path_factory.mktemp('tiny_teacher')
    weights = directory / 'regnety_002.pth'
    torch.save(timm_model.state_dict(), weights)
    config = directory / 'regnety_002_teacher.py'
    config.write_text(f"""
_base_ = [{osp.join(REPO, 'configs/regnet/regnety-160_timm_in1k.py')!r}]
model = dict(
    model_name='regnety_002',
    num_classes={NUM_CLASSES},
    pretrained_cfg_overlay=dict(
        file={str(weights)!r}, num_classes={NUM_CLASSES}))
""")
    return str(config), timm_model.state_dict()


def tiny_config(tmp_path, method, teacher_config, shapes_root) -> str:
    """The real config of ``method`` at toy size on the shape set."""
    connector = ''
    if method != 'deit-kd':  # the feature connector's sizes
        connector = (
            'distill_losses=dict(loss_feat=dict(connector=dict('
            f'student_dim={STUDENT_CHANNELS}, '
            f'teacher_dim={TEACHER_CHANNELS}))),'
        )
    path = tmp_path / f'deit_{method}_toy.py'
    path.write_text(f"""
_base_ = [{deit_config(method)!r}]
data_root = {shapes_root!r}
data_preprocessor = dict(num_classes={NUM_CLASSES})
_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='val', pipeline=_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
model = dict(
    student=dict(
        backbone=dict(
            arch=dict(_delete_=True, embed_dims={STUDENT_CHANNELS},
                      num_layers=2, num_heads=3, feedforward_channels=96),
            img_size=32,
            patch_size=8),
        head=dict(num_classes={NUM_CLASSES}, in_channels={STUDENT_CHANNELS})),
    {connector}
    teacher=dict(config={teacher_config!r}),
    teacher_ckpt={osp.join(osp.dirname(teacher_config), 'regnety_002.pth')!r})
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
""")
    return str(path)


def random_batch(size=8):
    generator = torch.Generator().manual_seed(3)
    return dict(
        inputs=[
            torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=generator)
            for _ in range(size)
        ],
        data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(size)],
    )


@pytest.mark.parametrize(
    'method, losses, pi_distill',
    [
        ('deit-kd', {'distill.loss_hard', 'student.loss'}, 0.5),
        ('vkd', {'distill.loss_kl', 'distill.loss_feat', 'student.loss'}, 1.0),
    ],
)
def test_fixed_weight_baselines_train(
    tmp_path, tiny_teacher, shapes_root, method, losses, pi_distill
):
    """DeiT's KD (0.5 / 0.5) and VkD (1 / 1): two steps in process."""
    teacher_config, teacher_state = tiny_teacher
    cfg = Config.fromfile(tiny_config(tmp_path, method, teacher_config, shapes_root))
    init_default_scope('mmpretrain')
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    # The teacher holds the file's weights (teacher_ckpt, loaded strictly
    # when training starts).
    for key in ('head.fc.weight', 's4.b1.conv3.bn.running_var'):
        assert torch.equal(model.teacher.state_dict()[key], teacher_state[key])
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    model.train()
    for _ in range(2):
        log_vars = model.train_step(random_batch(), wrapper)
    assert losses <= set(log_vars)
    assert all(math.isfinite(log_vars[k]) for k in losses)
    assert log_vars['mokd/weight_distill'] == pytest.approx(pi_distill)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key  # frozen

    # The distillation head learns from the teacher only, the class head
    # from the labels only.
    data = model.data_preprocessor(random_batch(), True)
    raw = model(data['inputs'], data['data_samples'], mode='loss')
    distill = sum(v for k, v in raw.items() if k.startswith('distill.'))
    heads = model.student.head.layers
    for objective, trained, untouched in (
        (distill, heads.head_dist, heads.head),
        (raw['student.loss'], heads.head, heads.head_dist),
    ):
        grads = torch.autograd.grad(
            objective, [trained.weight, untouched.weight], retain_graph=True, allow_unused=True
        )
        assert grads[0].abs().sum() > 0
        assert grads[1] is None or not grads[1].any()


def test_mokd_trains_and_evaluates_through_the_tools(tmp_path, tiny_teacher, shapes_root):
    """One epoch of tools/train.py (validation included), then
    tools/test.py on its checkpoint."""
    config = tiny_config(tmp_path, 'mokd', tiny_teacher[0], shapes_root)
    _train(config, tmp_path / 'run')
    records = _scalars(tmp_path / 'run')
    assert len(records) == 4  # 64 images, batch 16, one epoch
    for record in records:
        for key in ('distill.loss_kl', 'distill.loss_feat', 'student.loss'):
            assert math.isfinite(record[key]) and record[key] > 0, key
    # MoKD learned its weights from the first step on.
    assert records[-1]['mokd/pi_distill'] != pytest.approx(0.5)
    ckpt = tmp_path / 'run' / 'epoch_1.pth'
    state = torch.load(ckpt)['state_dict']
    assert 'student.head.layers.head_dist.weight' in state
    assert 'student.backbone.dist_token' in state
    assert any(k.startswith('distill_losses.loss_feat.connectors.0') for k in state)
    assert not any(k.startswith(('teacher', '_teacher')) for k in state)

    out = _run(
        [
            sys.executable,
            'tools/test.py',
            config,
            str(ckpt),
            '--work-dir',
            str(tmp_path / 'eval'),
            '--out',
            str(tmp_path / 'preds.pkl'),
        ]
    )
    top1 = float(out.split('accuracy/top1: ')[1].split()[0])
    assert 0 <= top1 <= 100
    assert osp.getsize(tmp_path / 'preds.pkl') > 0
