# The demo's student trained alone: the teacher's architecture at half width.
_base_ = ['./resnet18-w16_shapes.py']
model = dict(backbone=dict(stem_channels=8, base_channels=8), head=dict(in_channels=64))
