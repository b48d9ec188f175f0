from .synthetic_coco import make_shape_detection
from .synthetic_shapes import SHAPE_CLASSES, make_shape_classification

__all__ = ['SHAPE_CLASSES', 'make_shape_classification', 'make_shape_detection']
