# ResNet-50 for CIFAR (teacher), 23.7M parameters: mmpretrain's ResNet_CIFAR
# (3x3 stride-1 stem, no max-pool); every BN scale starts at 1 (no zero-init
# of the last BN of a block), as in CRD.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(
    backbone=dict(type='ResNet_CIFAR', depth=50, zero_init_residual=False),
    head=dict(in_channels=2048),
)
