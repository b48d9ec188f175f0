# DeiT's own distillation (Touvron et al. 2021, hard-label distillation
# through the distillation token): 0.5 x cross-entropy of the class token
# against the labels + 0.5 x cross-entropy of the distillation token against
# the teacher's top-1 class, fixed weights.
_base_ = ['./regnety160_deit_in1k.py']

model = dict(
    distill_losses=dict(
        loss_hard=dict(type='HardDistillationLoss', student='dist_logits', teacher='logits')
    )
)
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=0.5, task=0.5))
)
