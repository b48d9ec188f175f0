# ResNet-8x4 (student), 1.2M parameters: ResNet-32x4 at depth 8.
_base_ = ['./resnet32x4_cifar100.py']

model = dict(backbone=dict(depth=8))
