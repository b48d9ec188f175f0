# What every DeiT <- RegNetY-160 distillation of Table 2 shares: DeiT's recipe
# (configs/_base_/deit_in1k_300e.py, through the DeiT-Ti config), a DeiT-Ti
# student with a distillation token, the RegNetY-160 teacher, and the taps on
# the distillation-token logits and the teacher's logits. A method config adds
# its distillation losses (and any further taps) and its weighting.
#
# Teacher: configs/regnet/regnety-160_timm_in1k.py (timm's regnety_160), built
# without weights; teacher_ckpt is the file DeiT published
# (regnety_160-a5fe301d.pth, timm's keys under 'model'), loaded strictly when
# training starts. Put it at checkpoints/ or point elsewhere with
#   --cfg-options model.teacher_ckpt=PATH
_base_ = ['../../../deit/deit-tiny_4xb256-300e_in1k.py', '../../_base_/mokd_runtime.py']
custom_imports = {{_base_.mokd_imports}}
optim_wrapper = {{_base_.mokd_optim_wrapper}}
model_wrapper_cfg = {{_base_.mokd_model_wrapper}}
default_hooks = {{_base_.mokd_hooks}}

model = dict(
    _delete_=True,
    type='MoKDDistiller',
    # DeiT-Ti trained alone (configs/deit), with a distillation token and its
    # classifier.
    student=dict(
        config='{{fileDirname}}/../../../deit/deit-tiny_4xb256-300e_in1k.py',
        backbone=dict(type='DistilledVisionTransformer'),
        head=dict(type='DeiTDistillationHead'),
    ),
    teacher=dict(
        config='{{fileDirname}}/../../../regnet/regnety-160_timm_in1k.py', pretrained=False
    ),
    teacher_ckpt='checkpoints/regnety_160-a5fe301d.pth',
    # (B, 1000) logits of the distillation token's classifier and of the
    # teacher (timm's ClassifierHead: global_pool -> drop -> fc).
    student_taps=dict(dist_logits='head.layers.head_dist'),
    teacher_taps=dict(logits='model.head.fc'),
    objectives=dict(distill=['distill.*'], task=['student.*']),
)
