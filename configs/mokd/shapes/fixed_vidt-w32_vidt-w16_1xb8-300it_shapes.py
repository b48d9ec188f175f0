# MoKD's losses with the fixed weighted sum of eq. (3), alpha = 1
# (benchmarks/demo_quality.py sets optim_wrapper.balancer.weights.distill).
_base_ = ['./_base_/vidt_shapes.py']
model = {{_base_.mokd}}
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=1.0, task=1.0))
)
