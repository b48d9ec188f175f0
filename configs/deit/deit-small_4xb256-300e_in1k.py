# DeiT-S trained alone (no teacher, no distillation token) with DeiT's
# 300-epoch recipe: the "DeiT-S [34]" row of the MoKD paper's Table 2
# (79.8 top-1, 22M parameters).
_base_ = ['./deit-tiny_4xb256-300e_in1k.py']

model = dict(backbone=dict(arch='deit-small'), head=dict(in_channels=384))
