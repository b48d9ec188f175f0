# MoKD on MMPretrain's own ResNet, as a user of mmpretrain writes it (the
# README's example): the student's config from the mmpretrain package, a
# ResNet-50 teacher. L_distill: KL of the logits + the pooled features
# through an indefinite-subspace connector; L_task: the cross-entropy.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='mmpretrain::resnet/resnet50_8xb32_in1k.py',
    teacher_ckpt='checkpoints/resnet50_8xb32_in1k.pth',
    # The pooled feature is the input of head.fc: its width (512 / 2048)
    # comes from the layer, so the connector needs no sizes.
    student_taps=dict(feat=dict(module='head.fc', input=True), logits='head.fc'),
    teacher_taps=dict(feat=dict(module='head.fc', input=True), logits='head.fc'),
    distill_losses=dict(
        loss_kl=dict(type='KLDivergenceLoss', student='logits', teacher='logits'),
        loss_feat=dict(
            type='StandardizedFeatureLoss',
            student='feat',
            teacher='feat',
            connector=dict(type='IndefiniteSubspaceConnector'),
        ),
    ),
    objectives=dict(distill=['distill.*'], task=['student.*']),
)

optim_wrapper = dict(
    type='MoKDOptimWrapper',
    constructor='MoKDOptimWrapperConstructor',
    # A different optimizer than the inherited SGD: _delete_ drops its keys.
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05),
    balancer=dict(type='MoKDAmortized'),
)
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
