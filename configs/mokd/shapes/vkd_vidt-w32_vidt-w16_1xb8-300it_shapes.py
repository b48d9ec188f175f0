# VkD with fixed weights: ViDT-w16 student, ViDT-w32 teacher.
_base_ = ['./_base_/vidt_shapes.py']
model = {{_base_.vkd}}
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=1.0, task=1.0))
)
