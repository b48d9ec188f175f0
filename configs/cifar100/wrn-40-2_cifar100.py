# WRN-40-2 (teacher), 2.2M parameters.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(
    backbone=dict(type='CifarWideResNet', depth=40, widen_factor=2), head=dict(in_channels=128)
)
