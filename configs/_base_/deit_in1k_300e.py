# DeiT's ImageNet-1k recipe (Touvron et al., ICML 2021), which VkD and MoKD
# train their DeiT students with: everything but the model and the optim
# wrapper's type.
#
# * data: mmpretrain's DeiT pipeline (bicubic RandomResizedCrop 224, flip,
#   RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25; test: bicubic
#   resize 256, centre crop 224) with DeiT's repeated augmentation (3
#   repeats). Mixup 0.8 / CutMix 1.0 and label smoothing 0.1 belong to the
#   student model (`train_cfg.augments`, `LabelSmoothLoss`).
# * optimizer: AdamW, lr 5e-4 per 512 images (1e-3 at 4 x 256, the MoKD
#   paper's lr), weight decay 0.05 except on norms, biases, other 1-D
#   parameters and the class / distillation tokens and position embedding.
# * schedule: 300 epochs, linear warm-up over 5 epochs from 1e-6, then
#   cosine to 5e-6, both per iteration.
# --amp trains in float16 (MoKDOptimWrapper(dtype='float16') for the
# distillers, AmpOptimWrapper for a student alone).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(_delete_=True, type='RepeatAugSampler', num_repeats=3),
)
val_dataloader = dict(batch_size=256, num_workers=8, persistent_workers=True)
test_dataloader = val_dataloader

# ------------------------------------------------------------ schedule
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)
    ),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.dist_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        },
    ),
)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / 1e-3,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=5e-6,
        by_epoch=True,
        begin=5,
        end=300,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# The lr above belongs to a total batch of 1024 (--auto-scale-lr rescales).
auto_scale_lr = dict(base_batch_size=1024)

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='accuracy/top1',
        rule='greater',
    )
)
