# ShuffleNet-V1 g=3 (student), 0.95M parameters.
_base_ = ['./_base_/cifar100_classifier.py']

model = dict(backbone=dict(type='CifarShuffleNetV1', groups=3), head=dict(in_channels=960))

# Light students train with lr 0.01 (CRD recipe).
optim_wrapper = dict(optimizer=dict(lr=0.01))
