# DeiT's hard-label distillation: DeiT-Ti (distillation token) <- RegNetY-160,
# 300 epochs on ImageNet-1k, 4 GPUs x 256. Table 2, row "DeiT-Ti (KD)" (74.5 top-1, 6M).
_base_ = ['./_base_/regnety160_deit_deit-kd_in1k.py']
