# DeiT-Ti trained alone (no teacher, no distillation token) with DeiT's
# 300-epoch recipe: the "DeiT-Ti [34]" row of the MoKD paper's Table 2
# (72.2 top-1, 5M parameters).
_base_ = ['../_base_/deit_in1k_300e.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16, drop_path_rate=0.1
    ),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=192,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
    ),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ],
    train_cfg=dict(
        augments=[
            dict(type='Mixup', alpha=0.8),
            dict(type='CutMix', alpha=1.0),
        ]
    ),
)
