# MoKD: ViDT-tiny student, ViDT-base teacher,
# 50 epochs on COCO (Tables 1, 4).
_base_ = ['./_base_/vidt_mokd.py']
model = dict(student=dict(backbone=dict(arch='tiny')))
