# MoKD, amortized weights re-evaluated on the same batch (Algorithm 1).
_base_ = ['./_base_/resnet18_shapes.py']
optim_wrapper = dict(diagnostics_interval=10)
