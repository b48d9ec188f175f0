# ResNet-20 (student), 0.28M parameters: ResNet-56 at depth 20.
_base_ = ['./resnet56_cifar100.py']

model = dict(backbone=dict(depth=20))
