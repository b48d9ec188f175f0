# VkD for ViDT on COCO (vidt_methods.py's `vkd`), fixed weights.
_base_ = ['./vidt_coco.py']
model = {{_base_.vkd}}
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=1.0, task=1.0))
)
