_base_ = ['./_base_/cifar100_bs64_240e.py']

default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mokd_mm.models.cifar'], allow_failed_imports=False)

# ResNet-20 (student), 0.28M parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', depth=20),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
