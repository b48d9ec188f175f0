# Baseline: the same losses with the fixed weighted sum of eq. (3), alpha = 1.
_base_ = ['./_base_/mokd_shapes_cls.py']
optim_wrapper = dict(balancer=dict(type='FixedWeights', weights=dict(distill=1.0, task=1.0)))
