# VkD with fixed weights on the demo's shape set: ViDT-w16 student, ViDT-w32
# teacher.
_base_ = ['./_base_/vidt_distill_shapes.py']
model = {{_base_.vkd}}
optim_wrapper = dict(balancer=dict(type='FixedWeights', weights=dict(distill=1.0, task=1.0)))
