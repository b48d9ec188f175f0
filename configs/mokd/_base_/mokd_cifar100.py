# MoKD on CIFAR-100 (paper, appendix C.5, Table 1), shared by the six
# teacher -> student pairs: the CRD / ReviewKD benchmark recipe of
# configs/cifar100 (SGD, 240 epochs, batch 64) and eq. 1 of appendix A:
#   L_distill = KL(student logits || teacher logits), T = 4 as in the CRD
#               literature (the paper gives no CIFAR temperature)
#             + standardized feature loss between the penultimate pooled
#               features through the indefinite-subspace connector;
#   L_task    = the student's cross-entropy;
# weighted by the amortized rule of Algorithm 1.
#
# A pair's config names the student and teacher configs of configs/cifar100
# (the student's model is read from its config, the data and schedule here
# are the ones that config inherits), the teacher checkpoint and the
# connector's sizes; MobileNet / ShuffleNet students also take their
# config's lr of 0.01.
_base_ = ['../../cifar100/_base_/cifar100_bs64_240e.py']
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

model = dict(
    type='MoKDDistiller',
    # Every CIFAR network of configs/cifar100 ends in global average
    # pooling and a LinearClsHead: the pooled feature is the input of
    # head.fc, (B, C), and the logits its output, (B, 100).
    student_taps=dict(
        feat=dict(module='head.fc', input=True), logits='head.fc'),
    teacher_taps=dict(
        feat=dict(module='head.fc', input=True), logits='head.fc'),
    distill_losses=dict(
        loss_kl=dict(
            type='KLDivergenceLoss',
            temperature=4.0,
            student='logits',
            teacher='logits'),
        loss_feat=dict(
            type='StandardizedFeatureLoss',
            student='feat',
            teacher='feat',
            connector=dict(type='IndefiniteSubspaceConnector'))),
    objectives=dict(distill=['distill.*'], task=['student.*']))

optim_wrapper = dict(
    type='MoKDOptimWrapper',
    constructor='MoKDOptimWrapperConstructor',
    balancer=dict(type='MoKDAmortized'),
    diagnostics_interval=100)
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
# New checkpoint first, then last_checkpoint, then outdated ones removed.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
