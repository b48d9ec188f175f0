"""The drop-in promise: mmdet's and mmpretrain's own tools, as shipped in
their wheels (``<package>/.mim/tools``), train and test the MoKD example
configs that inherit their packages' configs; the exported student
evaluates with its own config to the same metric."""

import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from mokd_mm.datasets import make_shape_detection
from tests.conftest import REPO

RETINANET = osp.join(REPO, 'configs/mokd/retinanet/mokd_retinanet-r50_retinanet-r18_1x_coco.py')
RESNET = osp.join(REPO, 'configs/mokd/resnet/mokd_resnet50_resnet18_8xb32_in1k.py')


def _tool(package, name):
    root = osp.dirname(importlib.util.find_spec(package).origin)
    path = osp.join(root, '.mim', 'tools', name)
    assert osp.isfile(path), f'{package} ships no {name}'
    return path


def _run(args, cwd):
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, 'PYTHONPATH': REPO},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def _metrics(work_dir):
    """The metrics of the newest test run (mmengine writes them as JSON),
    without its timings."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    with open(osp.join(work_dir, runs[-1], f'{runs[-1]}.json')) as f:
        return {k: v for k, v in json.load(f).items() if '/' in k}


def _random_checkpoint(model_cfg, scope, path, **overrides):
    cfg = Config.fromfile(model_cfg).model if isinstance(model_cfg, str) else model_cfg
    cfg = Config(dict(model=cfg))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


def test_mmdet_tools_train_test_and_evaluate_the_export(tmp_path):
    data = make_shape_detection(str(tmp_path / 'data'), num_train=8, num_val=4)
    shapes = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/shapes_coco.py'))
    mmdet_root = osp.dirname(importlib.util.find_spec('mmdet').origin)
    r50 = osp.join(mmdet_root, '.mim/configs/retinanet/retinanet_r50_fpn_1x_coco.py')
    teacher = _random_checkpoint(
        r50,
        'mmdet',
        tmp_path / 'r50.pth',
        **{'bbox_head.num_classes': 4, 'backbone.init_cfg': None},
    )
    loaders = {}
    for split in ('train', 'val'):
        loader = shapes[f'{split}_dataloader'].to_dict()
        loader['dataset'].update(data_root=data + '/')
        loader.update(batch_size=2, persistent_workers=False)
        loader['dataset']['_delete_'] = True
        loaders[split] = loader
    common = f"""
train_dataloader = {loaders['train']!r}
val_dataloader = {loaders['val']!r}
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', metric='bbox',
                     ann_file={data + '/annotations/instances_val.json'!r})
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=2)
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
"""
    distiller = tmp_path / 'distill.py'
    distiller.write_text(f"""_base_ = [{RETINANET!r}]
model = dict(
    student=dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=4),
                 test_cfg=dict(score_thr=0.0)),
    teacher=dict(_delete_=True, config='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                 bbox_head=dict(num_classes=4)),
    teacher_ckpt={teacher!r})
optim_wrapper = dict(clip_grad=dict(max_norm=10))
{common}""")
    student = tmp_path / 'student.py'
    student.write_text(f"""_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=4),
             test_cfg=dict(score_thr=0.0))
{common}""")
    work = tmp_path / 'work'
    out = _run([_tool('mmdet', 'train.py'), str(distiller), '--work-dir', str(work)], tmp_path)
    assert 'mokd/pi_distill' in out
    assert 'Detected call of `scheduler.step()`' not in out
    ckpt = str(work / 'iter_2.pth')
    # Testing needs no teacher file (only the student is evaluated).
    os.remove(teacher)
    _run(
        [
            _tool('mmdet', 'test.py'),
            str(distiller),
            ckpt,
            '--work-dir',
            str(tmp_path / 'e1'),
            '--out',
            str(tmp_path / 'distiller.pkl'),
        ],
        tmp_path,
    )
    # Test-time augmentation (the RetinaNet config's tta_model and flips)
    # around the distiller evaluates its student.
    tta = _run(
        [_tool('mmdet', 'test.py'), str(distiller), ckpt, '--work-dir', str(tmp_path / 'tta')]
        + ['--tta'],
        tmp_path,
    )
    assert "type='DetTTAModel'" in tta and 'coco/bbox_mAP' in _metrics(tmp_path / 'tta')
    exported = str(tmp_path / 'student.pth')
    _run([osp.join(REPO, 'tools/export_student.py'), ckpt, exported], tmp_path)
    _run(
        [
            _tool('mmdet', 'test.py'),
            str(student),
            exported,
            '--work-dir',
            str(tmp_path / 'e2'),
            '--out',
            str(tmp_path / 'student.pkl'),
        ],
        tmp_path,
    )
    metrics = _metrics(tmp_path / 'e1')
    assert 'coco/bbox_mAP' in metrics and metrics == _metrics(tmp_path / 'e2')
    # The same predictions, box for box.
    with open(tmp_path / 'distiller.pkl', 'rb') as f, open(tmp_path / 'student.pkl', 'rb') as g:
        ours, theirs = pickle.load(f), pickle.load(g)
    assert len(ours) == 4 and len(ours[0]['pred_instances']['bboxes']) > 0
    for a, b in zip(ours, theirs):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(a['pred_instances'][key], b['pred_instances'][key])


def test_mmpretrain_tools_with_amp(tmp_path, shapes_root):
    mmpretrain_root = osp.dirname(importlib.util.find_spec('mmpretrain').origin)
    r50 = osp.join(mmpretrain_root, '.mim/configs/resnet/resnet50_8xb32_in1k.py')
    teacher = _random_checkpoint(r50, 'mmpretrain', tmp_path / 'r50.pth', **{'head.num_classes': 4})
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

    def loader(split):
        return dict(
            batch_size=4,
            num_workers=0,
            persistent_workers=False,
            dataset=dict(
                _delete_=True,
                type='CustomDataset',
                data_root=shapes_root,
                data_prefix=split,
                pipeline=pipeline,
            ),
        )

    config = tmp_path / 'distill.py'
    config.write_text(f"""_base_ = [{RESNET!r}]
model = dict(student=dict(head=dict(num_classes=4)),
             teacher=dict(_delete_=True, config='mmpretrain::resnet/resnet50_8xb32_in1k.py',
                          head=dict(num_classes=4)),
             teacher_ckpt={teacher!r})
data_preprocessor = dict(num_classes=4)
train_dataloader = {loader('train')!r}
val_dataloader = {loader('val')!r}
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, by_epoch=False, max_iters=2, val_interval=2)
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
""")
    work = tmp_path / 'work'
    out = _run(
        [_tool('mmpretrain', 'train.py'), str(config), '--work-dir', str(work), '--amp'], tmp_path
    )
    assert "--amp: MoKDOptimWrapper with dtype='float16'" in out
    assert 'Detected call of `scheduler.step()`' not in out
    ckpt = torch.load(work / 'iter_2.pth', weights_only=False)
    assert ckpt['optimizer']['mokd']['loss_scaler'] is not None  # float16 loss scaling
    _run(
        [
            _tool('mmpretrain', 'test.py'),
            str(config),
            str(work / 'iter_2.pth'),
            '--work-dir',
            str(tmp_path / 'eval'),
        ],
        tmp_path,
    )
    assert 'accuracy/top1' in _metrics(tmp_path / 'eval')
