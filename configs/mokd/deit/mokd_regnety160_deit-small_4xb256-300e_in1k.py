# MoKD: DeiT-S (distillation token) <- RegNetY-160,
# 300 epochs on ImageNet-1k, 4 GPUs x 256. Table 2, row "MoKD-S" (83.1 top-1, 22M).
_base_ = ['./_base_/regnety160_deit_mokd_in1k.py']
model = dict(student=dict(backbone=dict(arch='deit-small'), head=dict(in_channels=384)))
