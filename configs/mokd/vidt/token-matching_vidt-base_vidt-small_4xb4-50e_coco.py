# ViDT's token matching, fixed weights: ViDT-small student, ViDT-base teacher,
# 50 epochs on COCO (Table 1).
_base_ = ['./_base_/vidt_token-matching.py']
model = dict(student=dict(backbone=dict(arch='small')))
