_base_ = ['./_base_/cifar100_bs64_240e.py']

default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mokd_mm.models.cifar'], allow_failed_imports=False)

# ResNet-50 for CIFAR (teacher), 23.7M parameters: mmpretrain's ResNet_CIFAR
# (3x3 stride-1 stem, no max-pool); every BN scale starts at 1 (no zero-init
# of the last BN of a block), as in CRD.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=50, zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
