"""A deterministic synthetic COCO-format detection set of coloured shapes,
for the demo, the tests and the benchmarks (COCO cannot be downloaded on our
machines).

:func:`make_shape_detection` writes::

    root/train/<index>.png
    root/val/<index>.png
    root/annotations/instances_train.json
    root/annotations/instances_val.json

readable by mmdet's ``CocoDataset`` and ``CocoMetric`` and by pycocotools.
Each image is a noisy background (:func:`noisy_background`) with clutter
(elongated ellipses and strokes, never one of :data:`SHAPE_CLASSES`) under
0 to ``max_objects`` shapes drawn by :func:`draw_shape`.

Labels:

- ``bbox`` is the tight ``[x, y, w, h]`` box of the *full* shape, occluded
  parts included (shapes are never cut by the image border), and ``area`` is
  the full shape's pixel count, on which COCO's small (< 32²), medium and
  large (> 96²) ranges are decided.
- Later shapes are drawn over earlier ones, but a placement that would hide
  more than :data:`MAX_OCCLUDED_FRACTION` of an earlier shape is redrawn
  (the shape is left out after :data:`PLACEMENT_TRIES` tries), so every shape
  in an image is labelled and at least 30% visible. An occluding shape's
  colour differs from those of the shapes it covers.
"""

import json
import os
import os.path as osp
from typing import List, Tuple, Union

import cv2
import numpy as np

from .synthetic_shapes import SHAPE_CLASSES, contrasting_color, draw_shape, noisy_background

#: The largest fraction of a shape's pixels that later shapes may cover.
MAX_OCCLUDED_FRACTION = 0.7
#: The chance that an image has no shape at all (only clutter).
EMPTY_IMAGE_PROB = 0.05
#: Placements tried for a shape before it is left out of its image.
PLACEMENT_TRIES = 20
#: The smallest shape radius; the largest is a third of the image's short side.
MIN_RADIUS = 6
#: The smallest image side accepted by :func:`make_shape_detection`.
MIN_IMAGE_SIDE = 32
#: The smallest per-channel gap between an occluder's colour and the colours
#: of the shapes it covers (met within :data:`PLACEMENT_TRIES` draws).
MIN_COLOR_GAP = 48

SideRange = Union[int, Tuple[int, int]]


def _side_range(side: SideRange, name: str) -> Tuple[int, int]:
    """``side`` (an int or an inclusive ``(min, max)``) as ``(min, max)``."""
    low, high = (side, side) if isinstance(side, int) else tuple(side)
    if low > high:
        raise ValueError(f'{name} range {side} has min > max')
    if low < MIN_IMAGE_SIDE:
        raise ValueError(f'{name} must be >= {MIN_IMAGE_SIDE}, got {side}')
    return int(low), int(high)


def _draw_clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw 1 to 6 distractors on ``img`` in place: elongated ellipses
    (never circle-like) and strokes of random colours and sizes."""
    height, width = img.shape[:2]
    short = min(height, width)
    for _ in range(rng.integers(1, 7)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        center = (int(rng.integers(width)), int(rng.integers(height)))
        length = int(rng.integers(4, max(5, short // 6)))
        if rng.random() < 0.5:
            axes = (length, max(1, int(length * rng.uniform(0.15, 0.4))))
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
        else:
            angle = rng.uniform(0, np.pi)
            end = (
                int(center[0] + 2 * length * np.cos(angle)),
                int(center[1] + 2 * length * np.sin(angle)),
            )
            cv2.line(img, center, end, color, int(rng.integers(1, 3)))


def _shape_mask(
    shape: str, center: Tuple[int, int], radius: int, height: int, width: int
) -> np.ndarray:
    """The (height, width) bool mask of ``shape`` as :func:`draw_shape`
    rasterises it."""
    mask = np.zeros((height, width), np.uint8)
    draw_shape(mask, shape, center, radius, (1, 1, 1))
    return mask.astype(bool)


def _distinct_color(
    rng: np.random.Generator, img: np.ndarray, covered_colors: List[np.ndarray]
) -> np.ndarray:
    """A colour contrasting with the background of ``img`` and, where it can
    be found in :data:`PLACEMENT_TRIES` draws, at least
    :data:`MIN_COLOR_GAP` from each of ``covered_colors`` in some channel."""
    for _ in range(PLACEMENT_TRIES):
        color = contrasting_color(rng, img)
        if all(np.abs(color - other).max() >= MIN_COLOR_GAP for other in covered_colors):
            break
    return color


def shape_detection_image(
    rng: np.random.Generator, height: int, width: int, max_objects: int
) -> Tuple[np.ndarray, List[dict]]:
    """One detection image and its objects.

    Args:
        rng (np.random.Generator): The only source of randomness.
        height (int): Image height.
        width (int): Image width.
        max_objects (int): The most shapes drawn.

    Returns:
        tuple[np.ndarray, list[dict]]: The (height, width, 3) uint8 BGR image
        and one ``dict(label, bbox, area)`` per shape, ``label`` indexing
        :data:`SHAPE_CLASSES` and ``bbox`` the full shape's ``[x, y, w, h]``.
    """
    img = noisy_background(rng, height, width)
    _draw_clutter(rng, img)
    num_objects = 0 if rng.random() < EMPTY_IMAGE_PROB else int(rng.integers(1, max_objects + 1))
    max_radius = min(height, width) // 3
    owner = np.full((height, width), -1, np.int64)  # the shape on top, or -1
    objects, colors, visible = [], [], []
    for _ in range(num_objects):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        for _ in range(PLACEMENT_TRIES):
            radius = int(round(np.exp(rng.uniform(np.log(MIN_RADIUS), np.log(max_radius)))))
            center = (
                int(rng.integers(radius, width - radius)),
                int(rng.integers(radius, height - radius)),
            )
            mask = _shape_mask(SHAPE_CLASSES[label], center, radius, height, width)
            covered = np.bincount(owner[mask] + 1, minlength=len(objects) + 1)[1:]
            still_visible = np.asarray(visible, np.int64) - covered
            min_visible = [(1 - MAX_OCCLUDED_FRACTION) * obj['area'] for obj in objects]
            if np.all(still_visible >= min_visible):
                break
        else:  # every placement hid too much of an earlier shape
            continue
        color = _distinct_color(rng, img, [colors[i] for i in np.flatnonzero(covered)])
        img[mask] = color
        owner[mask] = len(objects)
        area = int(mask.sum())
        visible = list(still_visible) + [area]
        colors.append(color)
        x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
        objects.append(dict(label=label, bbox=[x, y, w, h], area=area))
    return img, objects


def make_shape_detection(
    root: str,
    num_train: int = 512,
    num_val: int = 128,
    image_size: Tuple[SideRange, SideRange] = ((160, 224), (160, 224)),
    max_objects: int = 4,
    seed: int = 0,
) -> str:
    """Write the COCO-format detection set under ``root`` unless it is
    complete.

    ``root/.complete`` is written last: an interrupted run is redone, and a
    complete ``root`` is kept whatever the arguments. Image ``i`` of a split
    depends only on ``seed``, the split and ``i`` (not on the image counts).

    Args:
        root (str): The output folder.
        num_train (int): Training images. Defaults to 512.
        num_val (int): Validation images. Defaults to 128.
        image_size (tuple): ``(height, width)``, each an int or an inclusive
            ``(min, max)`` range drawn from per image. Defaults to
            ``((160, 224), (160, 224))``: images of many sizes, so batches
            need padding, small enough for a detector to learn on a CPU in
            minutes (the demo's set).
        max_objects (int): The most shapes in an image; each image has
            1 to ``max_objects`` shapes drawn uniformly, except a few
            (:data:`EMPTY_IMAGE_PROB`) that have none. Defaults to 4.
        seed (int): The seed (>= 0). Defaults to 0.

    Returns:
        str: ``root``.
    """
    for name, count in (('num_train', num_train), ('num_val', num_val)):
        if count < 0:
            raise ValueError(f'{name} must be >= 0, got {count}')
    if max_objects < 1:
        raise ValueError(f'max_objects must be >= 1, got {max_objects}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if len(image_size) != 2:
        raise ValueError(f'image_size must be (height, width), got {image_size}')
    height_range = _side_range(image_size[0], 'image_size height')
    width_range = _side_range(image_size[1], 'image_size width')

    done = osp.join(root, '.complete')
    if osp.exists(done):
        return root
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [
        dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(SHAPE_CLASSES)
    ]
    for split_index, (split, count) in enumerate((('train', num_train), ('val', num_val))):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            rng = np.random.default_rng([seed, split_index, index])
            height = int(rng.integers(height_range[0], height_range[1] + 1))
            width = int(rng.integers(width_range[0], width_range[1] + 1))
            img, objects = shape_detection_image(rng, height, width, max_objects)
            file_name = f'{index:06d}.png'
            cv2.imwrite(osp.join(root, split, file_name), img)
            images.append(dict(id=index + 1, file_name=file_name, width=width, height=height))
            for obj in objects:
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=index + 1,
                        category_id=obj['label'] + 1,
                        bbox=obj['bbox'],
                        area=obj['area'],
                        iscrowd=0,
                    )
                )
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    open(done, 'w').close()
    return root
