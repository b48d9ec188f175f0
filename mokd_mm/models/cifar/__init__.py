"""CIFAR backbones of the CRD / RepDistiller distillation benchmark.

Importing this package registers the backbones in mmpretrain's ``MODELS``
registry (use them under ``default_scope='mmpretrain'``). ResNet-50 for CIFAR
is mmpretrain's own ``ResNet_CIFAR`` with ``depth=50``.
"""

from .base import CifarBackbone
from .mobilenet_v2 import CifarMobileNetV2
from .resnet import CifarResNet
from .shufflenet_v1 import CifarShuffleNetV1
from .shufflenet_v2 import CifarShuffleNetV2
from .wide_resnet import CifarWideResNet

__all__ = [
    'CifarBackbone',
    'CifarResNet',
    'CifarWideResNet',
    'CifarMobileNetV2',
    'CifarShuffleNetV1',
    'CifarShuffleNetV2',
]
