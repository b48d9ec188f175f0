# MoKD: ViDT-w16 student, ViDT-w32 teacher, amortized weights re-evaluated on
# the same batch (Algorithm 1).
_base_ = ['./_base_/vidt_shapes.py']
model = {{_base_.mokd}}
optim_wrapper = dict(diagnostics_interval=20)
