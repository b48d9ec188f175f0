# VkD's orthogonal projector: DeiT-Ti (distillation token) <- RegNetY-160,
# 300 epochs on ImageNet-1k, 4 GPUs x 256. Table 2, row "VkD-Ti" (78.3 top-1, 6M).
_base_ = ['./_base_/regnety160_deit_vkd_in1k.py']
