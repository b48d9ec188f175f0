# VkD's orthogonal projectors, fixed weights: ViDT-tiny student, ViDT-base teacher,
# 50 epochs on COCO (Tables 1, 4).
_base_ = ['./_base_/vidt_vkd.py']
model = dict(student=dict(backbone=dict(arch='tiny')))
