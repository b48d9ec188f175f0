"""Every classification distillation config of configs/mokd (DeiT <-
RegNetY-160 on ImageNet, the CIFAR-100 pairs) and the DeiT student-only
configs build, with the sizes, taps and recipe they claim."""

import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mokd_mm  # noqa: F401  (registers the components)
from tests.conftest import REPO

DEIT_DISTILL = sorted(glob.glob(osp.join(REPO, 'configs/mokd/deit/*.py')))
DEIT_ALONE = sorted(glob.glob(osp.join(REPO, 'configs/deit/deit-*.py')))
CIFAR = sorted(glob.glob(osp.join(REPO, 'configs/mokd/cifar100/*.py')))
TEACHER_CFG = osp.join(REPO, 'configs/regnet/regnety-160_timm_in1k.py')


def millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def random_regnety160() -> dict:
    """The RegNetY-160 teacher config, random init (no weight file)."""
    teacher = Config.fromfile(TEACHER_CFG).model
    teacher.pretrained = False
    return teacher


def build(cfg: Config, device: str = 'cpu'):
    """The config's model; ``device='meta'`` for structure and sizes only."""
    init_default_scope('mmpretrain')
    with torch.device(device):
        return MODELS.build(cfg.model)


@functools.lru_cache(maxsize=1)
def build_deit_distiller(path: str):
    """A DeiT distillation config and its model with a random teacher (the
    last one is kept: the recipe test reuses it)."""
    cfg = Config.fromfile(path)
    assert osp.samefile(cfg.model.teacher.config, TEACHER_CFG)
    assert cfg.model.teacher_ckpt == 'checkpoints/regnety_160-a5fe301d.pth'
    cfg.model.teacher = random_regnety160()
    cfg.model.teacher_ckpt = None
    return cfg, build(cfg, 'meta')


def test_the_expected_configs_exist():
    names = [osp.basename(p) for p in DEIT_DISTILL + DEIT_ALONE]
    for size in ('tiny', 'small'):
        for method in ('mokd', 'deit-kd', 'vkd'):
            name = f'{method}_regnety160_deit-{size}_4xb256-300e_in1k.py'
            assert name in names
        assert f'deit-{size}_4xb256-300e_in1k.py' in names
    assert len(CIFAR) == 12


@pytest.mark.parametrize('path', DEIT_DISTILL, ids=osp.basename)
def test_deit_distillation_config_builds(path):
    cfg, model = build_deit_distiller(path)
    small = 'deit-small' in osp.basename(path)
    channels = 384 if small else 192
    # DeiT-Ti / -S with a distillation token and its classifier.
    assert millions(model.student) == pytest.approx(22.4 if small else 5.9, rel=0.02)
    assert millions(model.teacher) == pytest.approx(83.6, rel=0.01)
    assert model.student.backbone.embed_dims == channels
    assert model.student.head.layers.head_dist.in_features == channels
    assert model.taps['student'].specs['dist_logits'].module == 'head.layers.head_dist'
    assert model.taps['teacher'].modules['logits'].out_features == 1000
    if 'feat' in model.taps['student'].specs:
        # The student feature averages the final patch tokens: ln1 returns
        # the class and distillation tokens first.
        spec = model.taps['student'].specs['feat']
        assert (spec.module, spec.pool) == ('backbone.ln1', 'mean')
        assert spec.skip_tokens == model.student.backbone.num_extra_tokens == 2
        assert model.student.backbone.final_norm
    if 'feat' in model.taps['teacher'].specs:
        # The teacher feature is the 3024-d pooled input of RegNetY's fc.
        assert model.taps['teacher'].modules['feat'].in_features == 3024
        connector = model.distill_losses.loss_feat.connectors[0]
        assert (connector.student_dim, connector.teacher_dim) == (channels, 3024)
    method = osp.basename(path).split('_')[0]
    expected = {
        'mokd': ('MoKDAmortized', {'loss_kl', 'loss_feat'}, 'IndefiniteSubspaceConnector'),
        'deit-kd': ('FixedWeights', {'loss_hard'}, None),
        'vkd': ('FixedWeights', {'loss_kl', 'loss_feat'}, 'OrthogonalProjector'),
    }[method]
    assert cfg.optim_wrapper.balancer.type == expected[0]
    assert set(model.distill_losses) == expected[1]
    if expected[2]:
        assert type(connector).__name__ == expected[2]


@pytest.mark.parametrize('path', DEIT_ALONE, ids=osp.basename)
def test_deit_student_only_config_builds(path):
    model = build(Config.fromfile(path), 'meta')
    small = 'deit-small' in osp.basename(path)
    assert millions(model) == pytest.approx(22.05 if small else 5.72, rel=0.01)
    assert not hasattr(model.backbone, 'dist_token')


def test_deit_recipe_decays_only_weight_matrices():
    """AdamW with weight decay 0.05 on weight matrices (and the MoKD
    connector's projections), none on norms, biases, 1-D parameters,
    tokens and the position embedding; lr 1e-3 for 1024 images."""
    path = osp.join(REPO, 'configs/mokd/deit/vkd_regnety160_deit-tiny_4xb256-300e_in1k.py')
    cfg, model = build_deit_distiller(path)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
        assert group['lr'] == pytest.approx(1e-3)
    for name in (
        'student.backbone.cls_token',
        'student.backbone.dist_token',
        'student.backbone.pos_embed',
        'student.backbone.ln1.weight',
        'student.backbone.layers.0.attn.qkv.bias',
        'student.head.layers.head_dist.bias',
    ):
        assert decay[name] == 0, name
    for name in (
        'student.backbone.layers.0.attn.qkv.weight',
        'student.head.layers.head.weight',
        'student.backbone.patch_embed.projection.weight',
    ):
        assert decay[name] == pytest.approx(0.05), name
    assert any(n.startswith('distill_losses.loss_feat') and d > 0 for n, d in decay.items())


def test_deit_schedule_warms_up_from_1e6_and_ends_at_5e6():
    cfg = Config.fromfile(DEIT_DISTILL[0])
    warmup, cosine = cfg.param_scheduler
    lr = cfg.optim_wrapper.optimizer.lr
    assert lr * warmup.start_factor == pytest.approx(1e-6)
    assert (warmup.end, cosine.begin, cosine.end) == (5, 5, 300)
    assert cosine.eta_min == 5e-6
    assert warmup.convert_to_iter_based and cosine.convert_to_iter_based
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.auto_scale_lr.base_batch_size == 4 * 256 == 4 * cfg.train_dataloader.batch_size
    from mokd_mm.models.distillers import load_model_config

    student = load_model_config(cfg.model.student, 'student')
    augments = student['train_cfg']['augments']
    assert [(a['type'], a['alpha']) for a in augments] == [('Mixup', 0.8), ('CutMix', 1.0)]
    assert student['head']['loss']['label_smooth_val'] == 0.1
    assert student['head']['type'] == 'DeiTDistillationHead'
    assert student['backbone']['type'] == 'DistilledVisionTransformer'


# CIFAR-100 pairs of appendix C.5: student / teacher sizes in millions.
CIFAR_SIZES = {
    'resnet20_resnet56': (0.28, 0.86),
    'wrn-40-1_wrn-40-2': (0.57, 2.26),
    'resnet8x4_resnet32x4': (1.23, 7.43),
    'mobilenetv2_resnet50': (0.81, 23.71),
    'shufflenetv1_resnet32x4': (0.95, 7.43),
    'shufflenetv2_resnet32x4': (1.36, 7.43),
}


@pytest.mark.parametrize('path', CIFAR, ids=osp.basename)
def test_cifar100_config_builds_and_follows_its_student(path):
    cfg = Config.fromfile(path)
    method, teacher_name, student_name = osp.basename(path).split('_')[:3]
    pair = f'{student_name}_{teacher_name}'
    # Paths relative to the config file ({{fileDirname}}), not to the cwd.
    assert osp.samefile(
        cfg.model.student, osp.join(REPO, f'configs/cifar100/{student_name}_cifar100.py')
    )
    assert osp.samefile(
        cfg.model.teacher, osp.join(REPO, f'configs/cifar100/{teacher_name}_cifar100.py')
    )
    assert cfg.model.teacher_ckpt == f'work_dirs/{teacher_name}_cifar100/epoch_240.pth'
    # The student's own recipe: its lr (0.01 for MobileNet / ShuffleNet).
    student_cfg = Config.fromfile(osp.join(REPO, cfg.model.student))
    assert cfg.optim_wrapper.optimizer == student_cfg.optim_wrapper.optimizer
    assert cfg.train_cfg == student_cfg.train_cfg

    cfg.model.teacher_ckpt = None
    model = build(cfg)
    student_size, teacher_size = CIFAR_SIZES[pair]
    assert millions(model.student) == pytest.approx(student_size, abs=0.01)
    assert millions(model.teacher) == pytest.approx(teacher_size, abs=0.01)
    kl = model.distill_losses.loss_kl.loss
    assert kl.temperature == 4.0
    if method == 'mokd':
        assert cfg.optim_wrapper.balancer.type == 'MoKDAmortized'
        connector = model.distill_losses.loss_feat.connectors[0]
        assert type(connector).__name__ == 'IndefiniteSubspaceConnector'
        assert connector.student_dim == model.student.head.fc.in_features
        assert connector.teacher_dim == model.teacher.head.fc.in_features
    else:
        assert set(model.distill_losses) == {'loss_kl'}
        assert cfg.optim_wrapper.balancer.to_dict() == dict(
            type='FixedWeights', weights=dict(distill=0.9, task=0.1)
        )


def test_cifar100_mokd_losses_on_a_batch():
    """The pooled-feature taps and the connector fit a real forward."""
    path = osp.join(
        REPO, 'configs/mokd/cifar100/mokd_resnet32x4_shufflenetv1_1xb64-240e_cifar100.py'
    )
    cfg = Config.fromfile(path)
    cfg.model.teacher_ckpt = None
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = build(cfg)
    data = dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(4)],
        data_samples=[DataSample().set_gt_label(i) for i in range(4)],
    )
    data = model.data_preprocessor(data, True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'student.loss', 'distill.loss_kl', 'distill.loss_feat'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
