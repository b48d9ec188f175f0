# MoKD on the demo's shape set: ViDT-w16 student, ViDT-w32 teacher, amortized
# weights re-evaluated on the same batch (paper, Algorithm 1).
_base_ = ['./_base_/vidt_distill_shapes.py']
model = {{_base_.mokd}}
optim_wrapper = dict(balancer=dict(type='MoKDAmortized'))
