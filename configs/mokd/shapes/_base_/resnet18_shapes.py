# The classification demo pair on the generated shape set (the tests' pair
# and benchmarks/demo_quality.py --task classification): ResNet-18 width-8
# student, width-16 teacher (that benchmark trains it into work_dirs/demo_cls).
# L_distill = KL(student logits || teacher logits) + the standardized feature
# loss of the pooled features through the indefinite-subspace connector
# (paper, appendix A, eq. 1); L_task = the student's cross-entropy.
_base_ = ['../../../demo/resnet18-w8_shapes.py', '../../_base_/mokd_runtime.py']
custom_imports = {{_base_.mokd_imports}}
optim_wrapper = {{_base_.mokd_optim_wrapper}}
model_wrapper_cfg = {{_base_.mokd_model_wrapper}}
default_hooks = {{_base_.mokd_hooks}}

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../../../demo/resnet18-w16_shapes.py',
    teacher_ckpt='work_dirs/demo_cls/teacher.pth',
    # The pooled feature is the input of head.fc (B, C): its width comes
    # from the layer, the connector needs no sizes.
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
