# ViDT distillation on COCO (paper, Tables 1, 3, 4): a ViDT student (nano by
# default; leaves set model.student.backbone.arch) learns from a ViDT teacher
# (Swin-base by default). Data, schedule and runtime are the student's own
# ViDT recipe (configs/vidt). The method bases (vidt_mokd.py,
# vidt_token-matching.py, vidt_vkd.py) add the distillation losses.
#
# Teacher checkpoint: convert the official ViDT checkpoint with
#   python tools/model_converters/vidt2mmdet.py vidt_base_50.pth checkpoints/vidt_swin-base_coco.pth
# (or train configs/vidt/vidt_swin-base_8xb2-50e_coco.py here) and set
# model.teacher_ckpt.
_base_ = ['../../vidt/vidt_swin-nano_8xb2-50e_coco.py']
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

# The token streams tapped on both detectors (ViDT's module paths, see its
# docstring): the 4 projected patch levels, the projected body [DET] tokens
# and the 6 decoder layers' outputs.
patch_taps = [f'patch{i}' for i in range(4)]
det_taps = ['det_body'] + [f'dec{i}' for i in range(6)]
stream_taps = patch_taps + det_taps
vidt_taps = dict(
    **{f'patch{i}': f'input_projs.{i}' for i in range(4)},
    det_body='det_token_proj',
    **{f'dec{i}': f'decoder.layers.{i}' for i in range(6)})

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    student={{_base_.model}},
    teacher='configs/vidt/vidt_swin-base_8xb2-50e_coco.py',
    teacher_ckpt='checkpoints/vidt_swin-base_coco.pth',
    student_taps=vidt_taps,
    teacher_taps=vidt_taps)

optim_wrapper = dict(
    type='MoKDOptimWrapper', constructor='MoKDOptimWrapperConstructor')
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
