# MoKD on the demo's shape set: ResNet-18-w8 student, ResNet-18-w16 teacher.
# L_distill = KL(student logits || teacher logits) + standardized feature
# loss through the indefinite-subspace connector (paper, appendix A, eq. 1);
# L_task = the student's cross-entropy.
_base_ = ['../../demo/resnet18-w8_shapes.py']
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='configs/demo/resnet18-w16_shapes.py',
    teacher_ckpt='work_dirs/demo_cls/teacher.pth',  # benchmarks/demo_quality.py trains it
    student_taps=dict(
        feat=dict(module='neck', index=-1), logits='head.fc'),
    teacher_taps=dict(
        feat=dict(module='neck', index=-1), logits='head.fc'),
    distill_losses=dict(
        loss_kl=dict(type='KLDivergenceLoss', student='logits', teacher='logits'),
        loss_feat=dict(
            type='StandardizedFeatureLoss',
            student='feat',
            teacher='feat',
            connector=dict(
                type='IndefiniteSubspaceConnector', student_dim=64, teacher_dim=128))),
    objectives=dict(distill=['distill.*'], task=['student.*']))

optim_wrapper = dict(
    type='MoKDOptimWrapper',
    constructor='MoKDOptimWrapperConstructor',
    balancer=dict(type='MoKDAmortized'),
    diagnostics_interval=10)
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
# New checkpoint first, then last_checkpoint, then outdated ones removed.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
