# ResNet-32x4 (teacher), 7.4M parameters.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(
    backbone=dict(type='CifarResNet', depth=32, stem_channels=32, stage_channels=(64, 128, 256)),
    head=dict(in_channels=256),
)
