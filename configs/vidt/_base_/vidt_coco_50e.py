# ViDT recipe on COCO 2017: DETR multi-scale resize + random crop, AdamW
# 1e-4 with cosine decay to 1e-7 over 50 epochs, 8 GPUs x 2 images.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
    './vidt_optimizer.py',
]
custom_imports = dict(imports=['mokd_mm.models.vidt'], allow_failed_imports=False)
default_scope = 'mmdet'

# Short sides 480..800 step 16, long side <= 1333 (official ViDT scales).
multi_scales = [(short, 1333) for short in range(480, 801, 16)]
# DETR augmentation: either a multi-scale resize, or a resize to short side
# 400/500/600, a random 384..600 crop, then the multi-scale resize.
multi_scale_resize = dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)
resize_crop_resize = [
    dict(
        type='RandomChoiceResize', scales=[(400, 4200), (500, 4200), (600, 4200)], keep_ratio=True
    ),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=(384, 600),
        allow_negative_crop=True,
    ),
    multi_scale_resize,
]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[[multi_scale_resize], resize_crop_resize]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, dataset=dict(filter_cfg=dict(filter_empty_gt=False), pipeline=train_pipeline)
)
# Evaluation at short side 800 (long side <= 1333) comes from the mmdet
# base test pipeline, CocoMetric(bbox) from its evaluators.

max_epochs = 50
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=1e-7,
        begin=0,
        end=max_epochs,
        by_epoch=True,
    )
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))

# 8 GPUs x 2 images per GPU.
auto_scale_lr = dict(base_batch_size=16)
