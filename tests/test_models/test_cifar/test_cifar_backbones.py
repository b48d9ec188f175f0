"""The CIFAR model zoo: backbones, classifier sizes and the configs."""

import re
from pathlib import Path
from typing import List, NamedTuple, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mokd_mm.models.cifar  # noqa: F401  (registers the backbones)

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG_PATHS = sorted((REPO_ROOT / 'configs' / 'cifar100').glob('*.py')) + sorted(
    (REPO_ROOT / 'configs' / 'regnet').glob('*.py')
)


class ZooEntry(NamedTuple):
    backbone: dict  # backbone config with the default out_indices
    stage_shapes: List[Tuple[int, int, int]]  # (C, H, W) per stage, 32x32 in
    reference_millions: float  # parameters of the 100-class classifier


# Parameter counts the CRD / RepDistiller benchmark models are known by.
ZOO = {
    'resnet20': ZooEntry(
        backbone=dict(type='CifarResNet', depth=20),
        stage_shapes=[(16, 32, 32), (32, 16, 16), (64, 8, 8)],
        reference_millions=0.28,
    ),
    'resnet56': ZooEntry(
        backbone=dict(type='CifarResNet', depth=56),
        stage_shapes=[(16, 32, 32), (32, 16, 16), (64, 8, 8)],
        reference_millions=0.86,
    ),
    'resnet8x4': ZooEntry(
        backbone=dict(type='CifarResNet', depth=8, stem_channels=32, stage_channels=(64, 128, 256)),
        stage_shapes=[(64, 32, 32), (128, 16, 16), (256, 8, 8)],
        reference_millions=1.23,
    ),
    'resnet32x4': ZooEntry(
        backbone=dict(
            type='CifarResNet', depth=32, stem_channels=32, stage_channels=(64, 128, 256)
        ),
        stage_shapes=[(64, 32, 32), (128, 16, 16), (256, 8, 8)],
        reference_millions=7.43,
    ),
    'wrn-40-2': ZooEntry(
        backbone=dict(type='CifarWideResNet', depth=40, widen_factor=2),
        stage_shapes=[(32, 32, 32), (64, 16, 16), (128, 8, 8)],
        reference_millions=2.26,
    ),
    'wrn-40-1': ZooEntry(
        backbone=dict(type='CifarWideResNet', depth=40, widen_factor=1),
        stage_shapes=[(16, 32, 32), (32, 16, 16), (64, 8, 8)],
        reference_millions=0.57,
    ),
    'resnet50': ZooEntry(
        backbone=dict(type='ResNet_CIFAR', depth=50),
        stage_shapes=[(256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4)],
        reference_millions=23.71,
    ),
    'mobilenetv2': ZooEntry(
        backbone=dict(type='CifarMobileNetV2', widen_factor=0.5),
        stage_shapes=[
            (8, 16, 16),
            (12, 16, 16),
            (16, 8, 8),
            (32, 4, 4),
            (48, 4, 4),
            (80, 2, 2),
            (160, 2, 2),
            (1280, 2, 2),
        ],
        reference_millions=0.81,
    ),
    'shufflenetv1': ZooEntry(
        backbone=dict(type='CifarShuffleNetV1', groups=3),
        stage_shapes=[(240, 16, 16), (480, 8, 8), (960, 4, 4)],
        reference_millions=0.95,
    ),
    'shufflenetv2': ZooEntry(
        backbone=dict(type='CifarShuffleNetV2', widen_factor=1.0),
        stage_shapes=[(116, 16, 16), (232, 8, 8), (464, 4, 4), (1024, 4, 4)],
        reference_millions=1.36,
    ),
}


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    init_default_scope('mmpretrain')


def build_classifier(backbone: dict, in_channels: int):
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=backbone,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=100, in_channels=in_channels, topk=(1, 5)),
        )
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name', list(ZOO))
def test_backbone_stage_shapes(name):
    entry = ZOO[name]
    all_stages = tuple(range(len(entry.stage_shapes)))
    backbone = MODELS.build(dict(entry.backbone, out_indices=all_stages))
    backbone.init_weights()
    feats = backbone(torch.rand(2, 3, 32, 32))
    assert isinstance(feats, tuple)
    assert [tuple(f.shape) for f in feats] == [(2,) + shape for shape in entry.stage_shapes]


@pytest.mark.parametrize('name', list(ZOO))
def test_classifier_size_and_logits(name):
    entry = ZOO[name]
    classifier = build_classifier(entry.backbone, entry.stage_shapes[-1][0])
    millions = count_parameters(classifier) / 1e6
    assert millions == pytest.approx(entry.reference_millions, rel=0.03)
    classifier.eval()
    with torch.no_grad():
        logits = classifier(torch.rand(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 100)


def test_classifier_trains_one_step():
    classifier = build_classifier(dict(type='CifarResNet', depth=8), 64)
    samples = [DataSample().set_gt_label(label) for label in (3, 97)]
    losses = classifier(torch.rand(2, 3, 32, 32), samples, mode='loss')
    losses['loss'].backward()
    stem_grad = classifier.backbone.stem.conv.weight.grad
    assert torch.isfinite(losses['loss'])
    assert stem_grad is not None and stem_grad.abs().sum() > 0


def test_resnet_depth_sets_blocks_per_stage():
    for depth, blocks in ((8, 1), (20, 3), (56, 9), (110, 18)):
        net = MODELS.build(dict(type='CifarResNet', depth=depth))
        assert [len(stage) for stage in net.stages] == [blocks] * 3


def test_shufflenetv1_group_settings():
    for groups, last_channels in ((1, 576), (2, 800)):
        net = MODELS.build(dict(type='CifarShuffleNetV1', groups=groups))
        (feat,) = net(torch.rand(2, 3, 32, 32))
        assert feat.shape == (2, last_channels, 4, 4)


def test_negative_out_index_counts_from_the_last_stage():
    net = MODELS.build(dict(type='CifarWideResNet', depth=16, widen_factor=1, out_indices=(-2, -1)))
    shapes = [tuple(f.shape) for f in net(torch.rand(2, 3, 32, 32))]
    assert shapes == [(2, 32, 16, 16), (2, 64, 8, 8)]


def test_wide_resnet_last_stage_is_activated():
    net = MODELS.build(dict(type='CifarWideResNet', depth=16, widen_factor=1))
    (feat,) = net(torch.randn(2, 3, 32, 32))
    assert feat.min() >= 0


@pytest.mark.parametrize(
    'cfg, message',
    [
        (dict(type='CifarResNet', depth=21), 'CifarResNet depth must be 6n+2 with n >= 1, got 21'),
        (
            dict(type='CifarResNet', stage_channels=(16, 32)),
            'CifarResNet stage_channels must list 3 widths, got (16, 32)',
        ),
        (
            dict(type='CifarWideResNet', depth=41),
            'CifarWideResNet depth must be 6n+4 with n >= 1, got 41',
        ),
        (
            dict(type='CifarShuffleNetV1', groups=8),
            'CifarShuffleNetV1 groups must be one of [1, 2, 3], got 8',
        ),
        (
            dict(type='CifarShuffleNetV2', widen_factor=0.75),
            'CifarShuffleNetV2 widen_factor must be one of [0.5, 1.0, 1.5, 2.0], got 0.75',
        ),
        (
            dict(type='CifarMobileNetV2', widen_factor=0),
            'CifarMobileNetV2 widen_factor must be > 0, got 0',
        ),
        (
            dict(type='CifarMobileNetV2', out_indices=(8,)),
            'CifarMobileNetV2 has 8 stages: out_indices must lie in [-8, 7], got 8',
        ),
    ],
)
def test_invalid_settings_are_named(cfg, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MODELS.build(cfg)


def test_every_config_is_collected():
    names = {path.name for path in CONFIG_PATHS}
    assert {
        'resnet56_cifar100.py',
        'resnet20_cifar100.py',
        'wrn-40-2_cifar100.py',
        'wrn-40-1_cifar100.py',
        'resnet32x4_cifar100.py',
        'resnet8x4_cifar100.py',
        'resnet50_cifar100.py',
        'mobilenetv2_cifar100.py',
        'shufflenetv1_cifar100.py',
        'shufflenetv2_cifar100.py',
        'regnety-160_timm_in1k.py',
    } <= names


@pytest.mark.parametrize('config_path', CONFIG_PATHS, ids=[path.stem for path in CONFIG_PATHS])
def test_config_builds(config_path):
    cfg = Config.fromfile(str(config_path))
    assert cfg.default_scope == 'mmpretrain'
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.copy()
    # What the Runner does with a top-level data_preprocessor.
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    if model_cfg.type == 'TimmClassifier':
        # The timm checkpoint this config loads is exercised, with a real
        # file, in tests/test_configs/test_regnety_teacher.py.
        model_cfg.pretrained = False
        inputs, num_classes = torch.rand(1, 3, 64, 64), 1000
    else:
        assert 'mokd_mm.models.cifar' in cfg.custom_imports.imports
        assert cfg.train_dataloader.batch_size == 64
        assert cfg.param_scheduler.milestones == [150, 180, 210]
        inputs, num_classes = torch.rand(2, 3, 32, 32), 100
    model = MODELS.build(model_cfg)
    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
    assert logits.shape == (inputs.shape[0], num_classes)


@pytest.mark.parametrize(
    'name, lr',
    [
        ('resnet56', 0.05),
        ('wrn-40-1', 0.05),
        ('mobilenetv2', 0.01),
        ('shufflenetv1', 0.01),
        ('shufflenetv2', 0.01),
    ],
)
def test_config_learning_rate(name, lr):
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'cifar100' / f'{name}_cifar100.py'))
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4
