"""Classification heads registered in mmpretrain's MODELS."""

from .deit_distillation_head import DeiTDistillationHead

__all__ = ['DeiTDistillationHead']
