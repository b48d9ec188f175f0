"""Every ViDT config loads, builds, and follows the official recipe."""

import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from tests.conftest import REPO
from tests.test_models.test_vidt.vidt_test_utils import tiny_vidt_cfg

CONFIG_DIR = osp.join(REPO, 'configs', 'vidt')
VARIANT_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, 'vidt_swin-*_8xb2-50e_coco.py')))
# Whole-detector parameters (80 classes): MoKD paper Table 1 for nano, tiny
# and small; the official ViDT release (99M, "0.1B" in the paper) for base.
EXPECTED_PARAMS = {'nano': 16e6, 'tiny': 38e6, 'small': 61e6, 'base': 99e6}


def variant_of(path: str) -> str:
    return osp.basename(path).split('_')[1].split('-')[1]


def test_the_four_variants_exist():
    assert sorted(map(variant_of, VARIANT_CONFIGS)) == sorted(EXPECTED_PARAMS)


@pytest.mark.parametrize('path', VARIANT_CONFIGS, ids=variant_of)
def test_config_builds_with_expected_parameter_count(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['mokd_mm.models.vidt'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    assert cfg.model.backbone.arch == variant_of(path)
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)  # sizes only: no values needed
    num_params = sum(p.numel() for p in model.parameters())
    expected = EXPECTED_PARAMS[variant_of(path)]
    assert abs(num_params - expected) / expected < 0.05, num_params
    assert model.num_queries == 100
    assert len(model.decoder.layers) == 6
    assert len(model.bbox_head.cls_branches) == 7
    assert model.backbone.cross_attn_stages == (3,)


def test_recipe_matches_the_official_training():
    cfg = Config.fromfile(VARIANT_CONFIGS[0])
    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
    assert optim.clip_grad.max_norm == 0.1
    assert cfg.train_cfg.max_epochs == 50
    [cosine] = cfg.param_scheduler
    assert cosine.type == 'CosineAnnealingLR' and cosine.eta_min == 1e-7
    assert cosine.T_max == 50 and cosine.by_epoch
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_dataloader.dataset.type == 'CocoDataset'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.val_evaluator.metric == 'bbox'
    [resize] = [t for t in cfg.test_pipeline if t.type == 'Resize']
    assert resize.scale == (1333, 800) and resize.keep_ratio


def test_weight_decay_spares_biases_norms_and_det_tokens():
    cfg = Config.fromfile(VARIANT_CONFIGS[0])
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(tiny_vidt_cfg())
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert decay['backbone.det_tokens'] == 0
    assert decay['backbone.det_pos_embed'] == 0
    assert decay['backbone.stages.0.blocks.0.attn.qkv.bias'] == 0
    assert decay['backbone.stages.0.blocks.0.norm1.weight'] == 0
    assert decay['input_projs.0.gn.weight'] == 0
    assert decay['backbone.stages.0.blocks.0.attn.qkv.weight'] == 1e-4
    assert decay['bbox_head.cls_branches.0.weight'] == 1e-4


def test_train_pipeline_resizes_to_the_detr_scales(tmp_path):
    cfg = Config.fromfile(VARIANT_CONFIGS[0])
    image_path = str(tmp_path / 'image.jpg')
    mmcv.imwrite(np.zeros((300, 450, 3), dtype=np.uint8), image_path)
    sample = dict(
        img_path=image_path,
        img_id=0,
        instances=[dict(bbox=[50.0, 40.0, 250.0, 260.0], bbox_label=3, ignore_flag=0)],
    )
    with DefaultScope.overwrite_default_scope('mmdet'):
        train = Compose(cfg.train_pipeline)
        test = Compose(cfg.test_pipeline)
    short_sides = set()
    torch.manual_seed(0)
    np.random.seed(0)
    for _ in range(20):
        packed = train(dict(sample))
        h, w = packed['inputs'].shape[-2:]
        assert max(h, w) <= 1333
        short_sides.add(min(h, w))
    assert short_sides <= set(range(480, 801, 16))
    assert len(short_sides) > 1
    h, w = test(dict(sample))['inputs'].shape[-2:]
    assert (h, w) == (800, 1200)
