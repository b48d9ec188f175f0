# Plain knowledge distillation (Hinton et al.) on CIFAR-100, the baseline of
# the MoKD pairs, as the CRD / mdistiller benchmark runs it: the CRD recipe
# of configs/cifar100, 0.1 x cross-entropy + 0.9 x KL(student || teacher)
# at T = 4 (times T^2), fixed weights. A pair's config names the student and
# teacher configs and the teacher checkpoint.
_base_ = ['../../cifar100/_base_/cifar100_bs64_240e.py']
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

model = dict(
    type='MoKDDistiller',
    student_taps=dict(logits='head.fc'),
    teacher_taps=dict(logits='head.fc'),
    distill_losses=dict(
        loss_kl=dict(
            type='KLDivergenceLoss',
            temperature=4.0,
            student='logits',
            teacher='logits')),
    objectives=dict(distill=['distill.*'], task=['student.*']))

optim_wrapper = dict(
    type='MoKDOptimWrapper',
    constructor='MoKDOptimWrapperConstructor',
    balancer=dict(type='FixedWeights', weights=dict(distill=0.9, task=0.1)))
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
# New checkpoint first, then last_checkpoint, then outdated ones removed.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
