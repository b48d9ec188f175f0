"""A deterministic synthetic image set of coloured shapes, for the demo and
the tests (no data set can be downloaded on our machines).

:func:`make_shape_classification` writes an image-folder classification
set readable by mmpretrain's ``CustomDataset``: ``root/{train,val}/<class>/
<index>.png``.
"""

import os
import os.path as osp

import cv2
import numpy as np

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'cross')


def draw_shape(canvas: np.ndarray, shape: str, center, radius: int, color) -> None:
    """Draw a filled ``shape`` on ``canvas`` (H, W, 3, uint8) in place."""
    x, y = int(center[0]), int(center[1])
    r = int(radius)
    color = tuple(int(c) for c in color)
    if shape == 'circle':
        cv2.circle(canvas, (x, y), r, color, -1)
    elif shape == 'square':
        cv2.rectangle(canvas, (x - r, y - r), (x + r, y + r), color, -1)
    elif shape == 'triangle':
        pts = np.array([[x, y - r], [x - r, y + r], [x + r, y + r]], np.int32)
        cv2.fillPoly(canvas, [pts], color)
    elif shape == 'cross':
        w = max(1, r // 3)
        cv2.rectangle(canvas, (x - r, y - w), (x + r, y + w), color, -1)
        cv2.rectangle(canvas, (x - w, y - r), (x + w, y + r), color, -1)
    else:
        raise ValueError(f'unknown shape {shape!r}; known: {SHAPE_CLASSES}')


def noisy_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dark or light noisy background, (height, width, 3) uint8."""
    level = rng.integers(20, 90) if rng.random() < 0.5 else rng.integers(165, 235)
    tint = rng.integers(-20, 21, size=3)
    noise = rng.normal(0, 12, size=(height, width, 3))
    return np.clip(level + tint + noise, 0, 255).astype(np.uint8)


def contrasting_color(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour whose brightness is far from the background's."""
    light = background.mean() < 128
    level = rng.integers(170, 250) if light else rng.integers(10, 80)
    return np.clip(level + rng.integers(-40, 41, size=3), 0, 255)


def shape_image(rng: np.random.Generator, shape: str, size: int) -> np.ndarray:
    """One image of ``shape`` on a noisy background with a small distractor
    blob, (size, size, 3) uint8."""
    img = noisy_background(rng, size, size)
    cv2.circle(
        img,
        tuple(int(v) for v in rng.integers(0, size, 2)),
        int(rng.integers(1, max(2, size // 10))),
        tuple(int(c) for c in rng.integers(0, 256, 3)),
        -1,
    )
    radius = rng.integers(size // 5, size * 2 // 5)
    center = rng.integers(radius, size - radius + 1, 2)
    draw_shape(img, shape, center, radius, contrasting_color(rng, img))
    return img


def make_shape_classification(
    root: str, num_train: int = 1000, num_val: int = 200, size: int = 32, seed: int = 0
) -> str:
    """Write the classification set under ``root`` unless it is complete.

    Returns:
        str: ``root``.
    """
    done = osp.join(root, '.complete')
    if osp.exists(done):
        return root
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        for cls in SHAPE_CLASSES:
            os.makedirs(osp.join(root, split, cls), exist_ok=True)
        for i in range(count):
            cls = SHAPE_CLASSES[i % len(SHAPE_CLASSES)]
            img = shape_image(rng, cls, size)
            cv2.imwrite(osp.join(root, split, cls, f'{i:05d}.png'), img)
    open(done, 'w').close()
    return root
