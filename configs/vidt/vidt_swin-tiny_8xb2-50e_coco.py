_base_ = ['./_base_/models/vidt_swin.py', './_base_/vidt_coco_50e.py']
custom_imports = dict(imports=['mokd_mm.models.vidt'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(backbone=dict(arch='tiny'))
