_base_ = ['./_base_/cifar100_bs64_240e.py']

default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mokd_mm.models.cifar'], allow_failed_imports=False)

# ShuffleNet-V1 g=3 (student), 0.95M parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarShuffleNetV1', groups=3),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=960,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

# Light students train with lr 0.01 (CRD recipe).
optim_wrapper = dict(optimizer=dict(lr=0.01))
