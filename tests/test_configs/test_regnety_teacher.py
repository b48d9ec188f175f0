"""The RegNetY-160 teacher built from a timm-format checkpoint file.

The checkpoints are made here from a randomly initialised timm model; nothing
is downloaded.
"""

from pathlib import Path

import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from safetensors.torch import save_file

CONFIG = Path(__file__).resolve().parents[2] / 'configs' / 'regnet' / 'regnety-160_timm_in1k.py'


def randomize_norms(model: torch.nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters.

    A fresh timm RegNet has unit / zero BatchNorm buffers and zero-initialised
    last-BN scales, under which a teacher that dropped those tensors would
    still reproduce the logits.
    """
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(size, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(size, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(size, generator=generator))


@pytest.fixture(scope='module')
def timm_regnety():
    """The timm model the checkpoints come from, in eval mode."""
    torch.manual_seed(0)
    model = timm.create_model('regnety_160', pretrained=False)
    with torch.no_grad():
        randomize_norms(model)
    return model.eval()


@pytest.fixture(scope='module')
def checkpoint_dir(tmp_path_factory, timm_regnety):
    """The same weights as a plain .pth, a DeiT-style .pth.tar holding them
    under 'model', and a .safetensors file."""
    directory = tmp_path_factory.mktemp('regnety_160')
    state_dict = timm_regnety.state_dict()
    torch.save(state_dict, directory / 'regnety_160.pth')
    torch.save({'model': state_dict}, directory / 'regnety_160.pth.tar')
    save_file(
        {k: v.contiguous() for k, v in state_dict.items()},
        str(directory / 'regnety_160.safetensors'),
    )
    return directory


def build_teacher(checkpoint: Path) -> torch.nn.Module:
    """Build the teacher as a user does: the config, with the checkpoint path
    given the way ``--cfg-options`` gives it, then ``init_weights`` as the
    Runner calls it."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.merge_from_dict({'model.pretrained_cfg_overlay.file': str(checkpoint)})
    init_default_scope(cfg.default_scope)
    teacher = MODELS.build(cfg.model)
    teacher.init_weights()
    return teacher.eval()


@pytest.fixture(scope='module')
def image():
    return torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    'file_name', ['regnety_160.pth', 'regnety_160.pth.tar', 'regnety_160.safetensors']
)
def test_teacher_reproduces_timm_logits(timm_regnety, checkpoint_dir, image, file_name):
    teacher = build_teacher(checkpoint_dir / file_name)
    with torch.no_grad():
        expected = timm_regnety(image)
        logits = teacher(image, mode='tensor')
    assert expected.shape == (1, 1000)
    assert torch.isfinite(expected).all()
    torch.testing.assert_close(logits, expected)


def test_unloaded_teacher_gives_other_logits(timm_regnety, image):
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.pretrained = False
    init_default_scope(cfg.default_scope)
    random_teacher = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        assert not torch.allclose(random_teacher(image, mode='tensor'), timm_regnety(image))


def test_teacher_size_and_state_dict_keys(timm_regnety, checkpoint_dir):
    teacher = build_teacher(checkpoint_dir / 'regnety_160.pth')
    num_params = sum(p.numel() for p in teacher.parameters())
    assert num_params / 1e6 == pytest.approx(83.6, rel=0.03)
    # Checkpoints the teacher saves keep timm's names.
    assert list(teacher.state_dict()) == list(timm_regnety.state_dict())


def test_wrong_key_is_named(timm_regnety, tmp_path):
    state_dict = dict(timm_regnety.state_dict())
    state_dict['head.fc.weights'] = state_dict.pop('head.fc.weight')
    checkpoint = tmp_path / 'renamed_head.pth'
    torch.save(state_dict, checkpoint)
    with pytest.raises(RuntimeError, match=r'head\.fc\.weights'):
        build_teacher(checkpoint)


def test_missing_checkpoint_stops_the_build(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_teacher(tmp_path / 'absent.pth')


def test_teacher_ckpt_takes_the_published_deit_style_file(tmp_path):
    """A distiller's ``teacher_ckpt`` pointing at a timm training checkpoint
    (weights under ``'model'``, as DeiT publishes regnety_160) loads
    strictly into a TimmClassifier teacher built without weights."""
    import timm
    from mmengine.registry import DefaultScope

    from mokd_mm.models import MoKDDistiller

    torch.manual_seed(0)
    source = timm.create_model('regnety_002', pretrained=False).eval()
    path = tmp_path / 'regnety_002.pth.tar'
    torch.save({'model': source.state_dict(), 'epoch': 1}, path)
    teacher = dict(
        type='TimmClassifier',
        model_name='regnety_002',
        pretrained=False,
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[0.0] * 3, std=[1.0] * 3),
    )
    student = dict(teacher, model_name='regnety_002')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        distiller = MoKDDistiller(student=student, teacher=teacher, teacher_ckpt=str(path))
    distiller.train()  # loads the teacher
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(distiller.teacher(x, mode='tensor'), source(x), atol=1e-5)
