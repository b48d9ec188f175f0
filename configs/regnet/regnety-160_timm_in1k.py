# RegNetY-160 ImageNet-1k classifier in timm's format: the teacher DeiT and
# VkD distill from (timm's `regnety_160`, 83.6M parameters).
#
# The classifier is mmpretrain's TimmClassifier, which wraps the timm model as
# `model.model` and keeps timm's parameter names in its state dict. timm loads
# the checkpoint file named below while the model is built, strictly: a file
# with a missing or an unexpected key stops the build with an error that names
# the key. It accepts a plain timm state dict (.pth, .pth.tar, .bin or
# .safetensors) or a training checkpoint holding it under 'state_dict' or
# 'model' (DeiT's published regnety_160-a5fe301d.pth is the latter).
# Point it elsewhere with
#   --cfg-options model.pretrained_cfg_overlay.file=PATH
# Nothing is downloaded.
default_scope = 'mmpretrain'

model = dict(
    type='TimmClassifier',
    model_name='regnety_160',
    pretrained=True,
    pretrained_cfg_overlay=dict(file='checkpoints/regnety_160-a5fe301d.pth'),
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    # timm's ImageNet mean / std on 0-255 BGR-loaded images.
    data_preprocessor=dict(
        num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True
    ),
)

# timm's evaluation transform for regnety_160: bicubic resize of the short
# side to 235 (224 / crop_pct 0.95), centre crop 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=235, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_evaluator = dict(type='Accuracy', topk=(1, 5))
test_cfg = dict()
