# The demo's teacher: a CIFAR-style ResNet-18 of base width 16 (0.7M parameters).
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/datasets/shapes_cls.py',
    '../_base_/schedules/shapes_cls_iters.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16, out_indices=(3,)
    ),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=4,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ),
)
default_hooks = dict(
    # Validation scalars keyed by iteration (mmengine's default is the epoch).
    logger=dict(interval=20, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2),
)
randomness = dict(seed=0)
