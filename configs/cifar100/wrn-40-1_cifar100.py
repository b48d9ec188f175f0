# WRN-40-1 (student), 0.57M parameters: WRN-40-2 at widen factor 1.
_base_ = ['./wrn-40-2_cifar100.py']

model = dict(backbone=dict(widen_factor=1), head=dict(in_channels=64))
