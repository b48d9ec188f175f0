# ViDT's own token-matching distillation (the 'Token-Matching' rows): the 4
# projected patch levels, the body [DET] tokens and every decoder layer's
# output, matched by index without connectors; square root of the summed
# mean distances, weight 4, added to the task loss with fixed weights.
_base_ = ['./vidt_distill.py']

model = dict(
    distill_losses=dict(
        loss_tokens=dict(
            type='TokenMatchingLoss', student={{_base_.stream_taps}},
            teacher={{_base_.stream_taps}}, loss_weight=4.0)))
optim_wrapper = dict(mode='fixed', weights=dict(distill=1.0, task=1.0))
