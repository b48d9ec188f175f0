# ViDT distillation on the demo's generated shape set (tools/demo.py and
# benchmarks/demo_quality.py): the width-16 ViDT student learns from the
# width-32 ViDT teacher that the demo trains first. The leaves merge in a
# method fragment of vidt_methods.py.
_base_ = ['../../demo/vidt_swin-w16_shapes.py', './vidt_methods.py']
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='configs/demo/vidt_swin-w32_shapes.py',
    teacher_ckpt='work_dirs/demo/teacher.pth')

optim_wrapper = dict(
    type='MoKDOptimWrapper', constructor='MoKDOptimWrapperConstructor',
    diagnostics_interval=20)
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
# New checkpoint first, then last_checkpoint, then outdated ones removed.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
