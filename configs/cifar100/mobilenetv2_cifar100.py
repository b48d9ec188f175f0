# MobileNet-V2 x0.5 (student), 0.81M parameters.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(backbone=dict(type='CifarMobileNetV2', widen_factor=0.5), head=dict(in_channels=1280))

# Light students train with lr 0.01 (CRD recipe).
optim_wrapper = dict(optimizer=dict(lr=0.01))
