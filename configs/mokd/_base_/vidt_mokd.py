# MoKD for ViDT on COCO: the losses of vidt_methods.py's `mokd`, weighted by
# the amortized rule.
_base_ = ['./vidt_distill.py']
model = {{_base_.mokd}}
optim_wrapper = dict(balancer=dict(type='MoKDAmortized'))
