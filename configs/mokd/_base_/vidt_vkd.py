# VkD for ViDT (the 'VkD' rows): per matched token stream an orthogonal
# 256 x 256 projector with per-channel scale and bias on the student side,
# both sides standardized per channel, smooth-L1, streams summed, weight 4,
# fixed weights.
_base_ = ['./vidt_distill.py']

model = dict(
    distill_losses=dict(
        loss_tokens=dict(
            type='StandardizedFeatureLoss', student={{_base_.stream_taps}},
            teacher={{_base_.stream_taps}},
            loss_weight=4.0,
            connector=dict(type='OrthogonalProjector', student_dim=256,
                           teacher_dim=256, affine=True))))
optim_wrapper = dict(mode='fixed', weights=dict(distill=1.0, task=1.0))
