# MoKD: ViDT-nano student, ViDT-base teacher,
# 50 epochs on COCO (Tables 1, 3, 4).
_base_ = ['./_base_/vidt_mokd.py']
