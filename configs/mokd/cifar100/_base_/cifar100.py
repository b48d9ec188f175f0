# Distillation on CIFAR-100 (paper, appendix C.5, Table 1): a student and a
# teacher of configs/cifar100 on the CRD / ReviewKD benchmark recipe of
# configs/cifar100/_base_ (SGD, 240 epochs, batch 64). A pair's config names
# the student and teacher configs (the student's model is read from its
# config; the data and schedule here are the ones that config inherits) and
# the teacher checkpoint; MobileNet / ShuffleNet students also take their
# config's lr of 0.01. Every CIFAR network of configs/cifar100 ends in global
# average pooling and a LinearClsHead: the pooled feature is the input of
# head.fc, (B, C), and the logits its output, (B, 100).
_base_ = ['../../../cifar100/_base_/cifar100_bs64_240e.py', '../../_base_/mokd_runtime.py']
custom_imports = {{_base_.mokd_imports}}
optim_wrapper = {{_base_.mokd_optim_wrapper}}
model_wrapper_cfg = {{_base_.mokd_model_wrapper}}
default_hooks = {{_base_.mokd_hooks}}

model = dict(
    type='MoKDDistiller',
    student_taps=dict(logits='head.fc'),
    teacher_taps=dict(logits='head.fc'),
    distill_losses=dict(
        loss_kl=dict(type='KLDivergenceLoss', temperature=4.0, student='logits', teacher='logits')
    ),
    objectives=dict(distill=['distill.*'], task=['student.*']),
)
