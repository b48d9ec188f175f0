# Baseline: MoKD's losses with the fixed weighted sum of eq. (3), alpha = 1.
_base_ = ['./_base_/resnet18_shapes.py']
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=1.0, task=1.0))
)
