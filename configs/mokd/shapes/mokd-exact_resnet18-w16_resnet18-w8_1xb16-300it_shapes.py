# MoKD with the exact weights of Theorem 3.1 (one backward pass per objective).
_base_ = ['./_base_/resnet18_shapes.py']
optim_wrapper = dict(balancer=dict(type='MoKDExact'), diagnostics_interval=10)
