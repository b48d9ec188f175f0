# MoKD for ViDT on COCO: the losses of vidt_methods.py's `mokd`, weighted by
# the amortized rule.
_base_ = ['./vidt_coco.py']
model = {{_base_.mokd}}
