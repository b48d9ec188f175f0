# Plain knowledge distillation (Hinton et al.) on CIFAR-100, the baseline of
# the MoKD pairs, as the CRD / mdistiller benchmark runs it: 0.1 x
# cross-entropy + 0.9 x KL(student || teacher) at T = 4 (times T^2), fixed
# weights.
_base_ = ['./cifar100.py']
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=0.9, task=0.1))
)
