"""The detection workflow through the tools: 2-process gloo distillation of
a tiny ViDT on a generated COCO-format set, COCO evaluation with
tools/test.py, export of the student and its evaluation with its own
config."""

import copy
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mokd_mm.datasets import make_shape_detection
from tests.conftest import REPO
from tests.test_models.test_vidt.vidt_test_utils import TINY_ARCH, tiny_vidt_cfg
from tests.test_tools.test_train_test_export import PYTHON, _free_port, _run

SHAPES_DATA = osp.join(REPO, 'configs/_base_/datasets/shapes_coco.py')
DATA_KEYS = (
    'train_dataloader',
    'val_dataloader',
    'test_dataloader',
    'val_evaluator',
    'test_evaluator',
)


def _tiny_detector(backbone_dims):
    cfg = tiny_vidt_cfg(embed_dims=256, num_decoder_layers=6)
    cfg['backbone']['arch'] = dict(TINY_ARCH, embed_dims=backbone_dims)
    cfg['bbox_head']['num_classes'] = 4
    return cfg


def _with_shapes_data(cfg: Config, root: str) -> Config:
    """Replace a config's data with the generated set at ``root``."""
    data = Config.fromfile(SHAPES_DATA)
    for key in DATA_KEYS:
        value = copy.deepcopy(data[key].to_dict())
        if 'dataset' in value:
            value['dataset']['data_root'] = root
            for step in value['dataset']['pipeline']:
                if step['type'] == 'Resize':
                    step['scale'] = (128, 128)
            value['batch_size'] = 2
        else:
            value['ann_file'] = osp.join(root, 'annotations/instances_val.json')
        cfg[key] = value
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
    cfg.default_hooks.logger.interval = 1
    return cfg


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_shape_detection(
        str(tmp_path_factory.mktemp('shapes_coco')),
        num_train=8,
        num_val=4,
        image_size=((96, 160), (96, 160)),
        max_objects=3,
    )


def _coco_map(output: str) -> float:
    return float(re.findall(r'coco/bbox_mAP: (-?[\d.]+)', output)[-1])


def test_dist_train_test_and_export(tmp_path, coco_root):
    torch.manual_seed(0)
    from mmengine.registry import MODELS, DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet'):
        teacher = MODELS.build(_tiny_detector(32))
    teacher.init_weights()
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)

    cfg = _with_shapes_data(Config.fromfile(osp.join(REPO, 'configs/mokd/vidt_nano.py')), coco_root)
    cfg.model.student = _tiny_detector(16)
    cfg.model.teacher = _tiny_detector(32)
    cfg.model.teacher_ckpt = teacher_ckpt
    config = str(tmp_path / 'vidt_mokd_tiny.py')
    cfg.dump(config)

    work_dir = tmp_path / 'train'
    out = _run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work_dir)],
        env=dict(PYTHON=PYTHON, PORT=str(_free_port()), OMP_NUM_THREADS='1'),
    )
    assert 'mokd/pi_distill' in out and 'coco/bbox_mAP' in out
    ckpt = str(work_dir / 'epoch_1.pth')

    out = _run([PYTHON, 'tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'test')])
    for metric in (
        'bbox_mAP',
        'bbox_mAP_50',
        'bbox_mAP_75',
        'bbox_mAP_s',
        'bbox_mAP_m',
        'bbox_mAP_l',
    ):
        assert f'coco/{metric}:' in out
    distiller_map = _coco_map(out)

    exported = str(tmp_path / 'student.pth')
    _run([PYTHON, 'tools/export_student.py', ckpt, exported])
    student_cfg = _with_shapes_data(
        Config.fromfile(osp.join(REPO, 'configs/vidt/vidt_swin-nano_8xb2-50e_coco.py')), coco_root
    )
    student_cfg.model = _tiny_detector(16)
    student_config = str(tmp_path / 'vidt_student_tiny.py')
    student_cfg.dump(student_config)
    out = _run(
        [
            PYTHON,
            'tools/test.py',
            student_config,
            exported,
            '--work-dir',
            str(tmp_path / 'test_student'),
        ]
    )
    assert _coco_map(out) == distiller_map
