# ViDT's token matching on COCO (vidt_methods.py's `token_matching`), added to
# the task loss with fixed weights.
_base_ = ['./vidt_coco.py']
model = {{_base_.token_matching}}
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=1.0, task=1.0))
)
