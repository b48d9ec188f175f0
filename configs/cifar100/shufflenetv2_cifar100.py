# ShuffleNet-V2 1.0x (student), 1.36M parameters.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(backbone=dict(type='CifarShuffleNetV2', widen_factor=1.0), head=dict(in_channels=1024))

# Light students train with lr 0.01 (CRD recipe).
optim_wrapper = dict(optimizer=dict(lr=0.01))
