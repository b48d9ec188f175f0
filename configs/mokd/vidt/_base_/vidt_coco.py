# ViDT distillation on COCO (paper, Tables 1, 3, 4): a ViDT student (nano;
# leaves set model.student.backbone.arch) learns from a ViDT teacher
# (Swin-base unless a leaf sets another). Data, schedule and runtime are the
# student's own ViDT recipe (configs/vidt: a total batch of 16 at lr 1e-4),
# spread over the 4 processes the paper trained on: 4 x 4 images
# (bash tools/dist_train.sh CONFIG 4). Method bases merge in a fragment of
# vidt_methods.py.
#
# Teacher checkpoint: convert the official ViDT checkpoint with
#   python tools/model_converters/vidt2mmdet.py vidt_base_50.pth checkpoints/vidt_swin-base_coco.pth
# (or train configs/vidt/vidt_swin-base_8xb2-50e_coco.py here).
_base_ = [
    '../../../vidt/vidt_swin-nano_8xb2-50e_coco.py',
    './vidt_methods.py',
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
    teacher='{{fileDirname}}/../../../vidt/vidt_swin-base_8xb2-50e_coco.py',
    teacher_ckpt='checkpoints/vidt_swin-base_coco.pth',
)
# 4 processes x 4 images: the recipe's total batch of 16 (auto_scale_lr's base).
train_dataloader = dict(batch_size=4)
