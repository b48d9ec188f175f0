# ResNet-56 (teacher), 0.86M parameters.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(backbone=dict(type='CifarResNet', depth=56), head=dict(in_channels=64))
