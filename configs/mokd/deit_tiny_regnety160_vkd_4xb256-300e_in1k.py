# VkD-Ti: DeiT-Ti <- RegNetY-160 with VkD's orthogonal projector, 300 epochs
# on ImageNet-1k, 4 GPUs x 256. Table 2, row "VkD-Ti" (78.3 top-1, 6M).
_base_ = ['./_base_/deit_regnety160_vkd_in1k.py']
