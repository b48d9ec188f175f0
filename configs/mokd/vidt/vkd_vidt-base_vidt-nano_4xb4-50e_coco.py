# VkD's orthogonal projectors, fixed weights: ViDT-nano student, ViDT-base teacher,
# 50 epochs on COCO (Tables 1, 3, 4).
_base_ = ['./_base_/vidt_vkd.py']
