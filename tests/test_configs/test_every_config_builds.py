"""Every config under configs/ loads and builds (on the meta device: sizes
and structure only, no weights), and every MoKD config carries the wiring and
names files that exist wherever it is loaded from."""

import glob
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import mokd_mm  # noqa: F401  (registers the components)
from tests.conftest import REPO

CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(os.sep)
)


def _build(cfg):
    model = cfg.model.to_dict()
    if model.get('type') == 'MoKDDistiller' and 'data_preprocessor' in cfg:
        model['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    if model.get('type') == 'TimmClassifier':
        model['pretrained'] = False  # the file is the user's (checkpoints/)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        try:
            with torch.device('meta'):
                return MODELS.build(model)
        except RuntimeError as err:  # e.g. mmpretrain's ResNet reads values at init
            if 'meta' not in str(err):
                raise
            return MODELS.build(model)  # the small ones: on the CPU


def test_the_tree_is_complete():
    for entry in (
        'configs/mokd/vidt_nano.py',
        'configs/mokd/vidt_tiny.py',
        'configs/mokd/vidt_small.py',
    ):
        assert entry in CONFIGS  # the product's promised entry points
    for folder in ('vidt', 'deit', 'cifar100', 'shapes', 'retinanet', 'resnet'):
        assert osp.isfile(osp.join(REPO, 'configs', 'mokd', folder, 'README.md')), folder


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not from the repository's root: paths are relative to files
    cfg = Config.fromfile(osp.join(REPO, path))
    check_schedule_in_name(path, cfg)
    model = _build(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    if cfg.model.type != 'MoKDDistiller':
        return
    assert 'mokd_mm' in cfg.custom_imports.imports
    assert cfg.optim_wrapper.type == 'MoKDOptimWrapper'
    assert cfg.optim_wrapper.constructor == 'MoKDOptimWrapperConstructor'
    assert cfg.model_wrapper_cfg.type == 'MoKDDistributedDataParallel'
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    for role in ('student', 'teacher'):
        spec = cfg.model[role]
        named = spec if isinstance(spec, str) else spec.get('config')
        if isinstance(named, str) and '::' not in named:
            assert osp.isfile(named), (role, named)
    if path.startswith('configs/mokd/vidt'):
        # Last-stage width 8 x embed_dims: nano 48, tiny / small 96, base 128.
        student, teacher = (
            model.student.backbone.det_channels,
            model.teacher.backbone.det_channels,
        )
        name = osp.basename(path)
        if name.startswith('vidt_'):
            name = f'mokd_vidt-base_{name[:-3].replace("_", "-")}'
        teacher_arch, student_arch = (p.split('-')[1] for p in name.split('_')[1:3])
        assert student == {'nano': 384, 'tiny': 768, 'small': 768}[student_arch]
        assert teacher == {'small': 768, 'base': 1024}[teacher_arch]


BATCH_IN_NAME = re.compile(r'_(\d+)xb(\d+)[-_]')
LENGTH_IN_NAME = re.compile(r'_\d+xb\d+-(\d+)(it|e)_')


def check_schedule_in_name(path: str, cfg: Config) -> None:
    """``NxbM`` in a name means N processes of M images, and the learning
    rate is the recipe's for that total batch: ``auto_scale_lr``'s base batch
    (the batch the config's learning rate is for) equals N x M, or
    ``auto_scale_lr`` is enabled and rescales it. The length after it
    (``300it``, ``50e``) is what the config trains."""
    length = LENGTH_IN_NAME.search(osp.basename(path))
    if length is not None:
        count, unit = int(length.group(1)), length.group(2)
        assert cfg.train_cfg.get('max_iters' if unit == 'it' else 'max_epochs') == count
    found = BATCH_IN_NAME.search(osp.basename(path))
    if found is None:
        return
    processes, per_process = map(int, found.groups())
    assert cfg.train_dataloader.batch_size == per_process
    scaling = cfg.get('auto_scale_lr')
    assert scaling is not None and 'base_batch_size' in scaling, 'no auto_scale_lr.base_batch_size'
    assert scaling.get('enable', False) or scaling.base_batch_size == processes * per_process


def test_the_entry_configs_are_the_papers_batch_on_four_processes():
    """`bash tools/dist_train.sh configs/mokd/vidt_nano.py 4` trains with the
    ViDT recipe's total batch (16) and learning rate (1e-4)."""
    for size in ('nano', 'tiny', 'small'):
        cfg = Config.fromfile(osp.join(REPO, f'configs/mokd/vidt_{size}.py'))
        assert 4 * cfg.train_dataloader.batch_size == cfg.auto_scale_lr.base_batch_size == 16
        assert cfg.optim_wrapper.optimizer.lr == 1e-4
