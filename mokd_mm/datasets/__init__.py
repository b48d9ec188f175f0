from .synthetic_shapes import SHAPE_CLASSES, make_shape_classification

__all__ = ['SHAPE_CLASSES', 'make_shape_classification']
