"""The synthetic COCO-format shape detection set: deterministic, valid COCO
(pycocotools), varied (object scales, empty images, image sizes), loadable by
mmdet through configs/_base_/datasets/shapes_coco.py, and self-consistent
(its ground truth scored as predictions gives bbox mAP 1.0)."""

import filecmp
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import METRICS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from pycocotools.coco import COCO

from mokd_mm.datasets import SHAPE_CLASSES, make_shape_detection
from tests.conftest import REPO

BASE_CFG = osp.join(REPO, 'configs/_base_/datasets/shapes_coco.py')
SPLITS = ('train', 'val')


def ann_file(root: str, split: str) -> str:
    return osp.join(root, 'annotations', f'instances_{split}.json')


def load_json(root: str, split: str) -> dict:
    with open(ann_file(root, split)) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def default_root(tmp_path_factory):
    """The set at the default arguments (512 train / 128 val images)."""
    return make_shape_detection(str(tmp_path_factory.mktemp('data') / 'shapes_coco'))


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    return make_shape_detection(
        str(tmp_path_factory.mktemp('data') / 'seed0_a'), num_train=16, num_val=8, seed=0
    )


def config_in(root: str) -> Config:
    """The base dataset config, pointed at ``root``."""
    cfg = Config.fromfile(BASE_CFG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = root
    cfg.val_evaluator.ann_file = ann_file(root, 'val')
    return cfg


def test_same_seed_same_files_other_seed_differs(small_root, tmp_path):
    again = make_shape_detection(str(tmp_path / 'seed0_b'), num_train=16, num_val=8, seed=0)
    other = make_shape_detection(str(tmp_path / 'seed1'), num_train=16, num_val=8, seed=1)
    for split in SPLITS:
        assert filecmp.cmp(ann_file(small_root, split), ann_file(again, split), shallow=False)
        assert not filecmp.cmp(ann_file(small_root, split), ann_file(other, split), shallow=False)
        names = sorted(os.listdir(osp.join(small_root, split)))
        assert len(names) == {'train': 16, 'val': 8}[split]
        match, mismatch, errors = filecmp.cmpfiles(
            osp.join(small_root, split), osp.join(again, split), names, shallow=False
        )
        assert match == names and not mismatch and not errors
        _, mismatch, _ = filecmp.cmpfiles(
            osp.join(small_root, split), osp.join(other, split), names, shallow=False
        )
        assert mismatch


def test_complete_sets_are_kept_and_interrupted_ones_redone(tmp_path):
    root = make_shape_detection(str(tmp_path / 'set'), num_train=2, num_val=1)
    image = osp.join(root, 'train', '000000.png')
    original = open(image, 'rb').read()
    os.remove(image)
    make_shape_detection(root, num_train=2, num_val=1)
    assert not osp.exists(image)  # .complete: nothing is redone
    os.remove(osp.join(root, '.complete'))
    make_shape_detection(root, num_train=2, num_val=1)
    assert open(image, 'rb').read() == original
    assert osp.exists(osp.join(root, '.complete'))


@pytest.mark.parametrize(
    'kwargs, name',
    [
        (dict(max_objects=0), 'max_objects'),
        (dict(num_train=-1), 'num_train'),
        (dict(image_size=(16, 256)), 'image_size height'),
        (dict(image_size=(256, (300, 200))), 'image_size width'),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_shape_detection(str(tmp_path / 'set'), **kwargs)


def test_pycocotools_loads_it_and_boxes_fit_their_images(small_root):
    for split in SPLITS:
        coco = COCO(ann_file(small_root, split))
        assert coco.getCatIds() == [1, 2, 3, 4]
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES)
        for image in coco.loadImgs(coco.getImgIds()):
            pixels = cv2.imread(osp.join(small_root, split, image['file_name']))
            assert pixels.shape == (image['height'], image['width'], 3)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image['id'])):
                x, y, w, h = ann['bbox']
                assert x >= 0 and y >= 0 and w >= 8 and h >= 8
                assert x + w <= image['width'] and y + h <= image['height']
                assert 0 < ann['area'] <= w * h and ann['iscrowd'] == 0


def test_default_set_has_every_scale_empty_images_and_several_sizes(default_root):
    for split, count in (('train', 512), ('val', 128)):
        coco = load_json(default_root, split)
        assert len(coco['images']) == count
        annotated = {ann['image_id'] for ann in coco['annotations']}
        assert any(image['id'] not in annotated for image in coco['images'])
        assert len({(image['height'], image['width']) for image in coco['images']}) >= 2
        areas = np.array([ann['area'] for ann in coco['annotations']])
        assert (areas < 32**2).any()
        assert ((areas >= 32**2) & (areas <= 96**2)).any()
        assert (areas > 96**2).any()
        assert len({ann['id'] for ann in coco['annotations']}) == len(areas)


def test_mmdet_loads_it_from_the_base_config(default_root):
    cfg = config_in(default_root)
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(cfg.train_dataloader)
        val_set = Runner.build_dataloader(cfg.val_dataloader).dataset
        batch = next(iter(loader))
    train_set = loader.dataset
    assert train_set.metainfo['classes'] == SHAPE_CLASSES
    assert len(train_set) == 512 and len(val_set) == 128  # empty ones kept
    coco = load_json(default_root, 'train')
    counts = {image['id']: 0 for image in coco['images']}
    for ann in coco['annotations']:
        counts[ann['image_id']] += 1
    empty_index = [image_id for image_id, n in counts.items() if n == 0][0] - 1
    for index in (0, empty_index):
        sample = train_set[index]
        instances = sample['data_samples'].gt_instances
        assert sample['inputs'].shape[0] == 3 and max(sample['inputs'].shape[1:]) == 192
        assert len(instances) == counts[index + 1]
        assert instances.bboxes.shape == (counts[index + 1], 4)
    assert len(batch['inputs']) == 8
    padded = DetDataPreprocessor(pad_size_divisor=32)(batch)
    assert padded['inputs'].shape[0] == 8
    assert padded['inputs'].shape[-1] % 32 == 0


def coco_metric_on(root: str, shift: float) -> dict:
    """The config's CocoMetric scoring the val ground truth, its boxes moved
    right by ``shift`` of their width, as score-1 predictions."""
    coco = load_json(root, 'val')
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(config_in(root).val_evaluator)
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    samples = []
    for image in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
        boxes = torch.tensor([a['bbox'] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 0] += shift * boxes[:, 2]
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        samples.append(
            dict(
                img_id=image['id'],
                ori_shape=(image['height'], image['width']),
                pred_instances=dict(
                    bboxes=boxes,
                    scores=torch.ones(len(anns)),
                    labels=torch.tensor([a['category_id'] - 1 for a in anns]),
                ),
            )
        )
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_ground_truth_as_predictions_scores_map_one(default_root):
    exact = coco_metric_on(default_root, shift=0.0)
    for key in ('bbox_mAP', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l'):
        assert exact[f'coco/{key}'] == 1.0
    shifted = coco_metric_on(default_root, shift=0.2)  # IoU 2/3
    assert shifted['coco/bbox_mAP_50'] == 1.0
    assert shifted['coco/bbox_mAP'] < 1.0
