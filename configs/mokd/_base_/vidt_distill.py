# ViDT distillation on COCO (paper, Tables 1, 3, 4): a ViDT student (nano by
# default; leaves set model.student.backbone.arch) learns from a ViDT teacher
# (Swin-base by default). Data, schedule and runtime are the student's own
# ViDT recipe (configs/vidt). The method bases (vidt_mokd.py,
# vidt_token-matching.py, vidt_vkd.py) merge in a fragment of
# vidt_methods.py.
#
# Teacher checkpoint: convert the official ViDT checkpoint with
#   python tools/model_converters/vidt2mmdet.py vidt_base_50.pth checkpoints/vidt_swin-base_coco.pth
# (or train configs/vidt/vidt_swin-base_8xb2-50e_coco.py here) and set
# model.teacher_ckpt.
_base_ = ['../../vidt/vidt_swin-nano_8xb2-50e_coco.py', './vidt_methods.py']
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='configs/vidt/vidt_swin-base_8xb2-50e_coco.py',
    teacher_ckpt='checkpoints/vidt_swin-base_coco.pth')

optim_wrapper = dict(
    type='MoKDOptimWrapper', constructor='MoKDOptimWrapperConstructor')
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
# New checkpoint first, then last_checkpoint, then outdated ones removed.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
