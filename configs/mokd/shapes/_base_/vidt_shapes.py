# ViDT distillation on the demo's generated shape set (tools/demo.py,
# benchmarks/demo_quality.py --task detection): the width-16 ViDT student
# learns from the width-32 ViDT teacher the demo trains first. A method config
# merges in a fragment of ../../vidt/_base_/vidt_methods.py.
_base_ = [
    '../../../demo/vidt_swin-w16_shapes.py',
    '../../vidt/_base_/vidt_methods.py',
    '../../_base_/mokd_runtime.py',
]
custom_imports = {{_base_.mokd_imports}}
optim_wrapper = {{_base_.mokd_optim_wrapper}}
model_wrapper_cfg = {{_base_.mokd_model_wrapper}}
default_hooks = {{_base_.mokd_hooks}}

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../../../demo/vidt_swin-w32_shapes.py',
    teacher_ckpt='work_dirs/demo/teacher.pth',
)
