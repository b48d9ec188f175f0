_base_ = ['./_base_/cifar100_bs64_240e.py']

default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mokd_mm.models.cifar'], allow_failed_imports=False)

# ResNet-32x4 (teacher), 7.4M parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='CifarResNet',
        depth=32,
        stem_channels=32,
        stage_channels=(64, 128, 256)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=256,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
