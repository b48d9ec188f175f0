_base_ = ['./_base_/cifar100_bs64_240e.py']

default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mokd_mm.models.cifar'], allow_failed_imports=False)

# ShuffleNet-V2 1.0x (student), 1.36M parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarShuffleNetV2', widen_factor=1.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

# Light students train with lr 0.01 (CRD recipe).
optim_wrapper = dict(optimizer=dict(lr=0.01))
