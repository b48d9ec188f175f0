# MoKD on MMDetection's own RetinaNet, as a user of mmdet writes it: inherit
# the student's config from the mmdet package, swap its model for a
# MoKDDistiller around it, name the teacher's config and checkpoint.
# L_distill: the 5 FPN levels through indefinite-subspace connectors
# (standardized smooth-L1); L_task: the student's focal and box losses.
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
custom_imports = dict(imports=['mokd_mm'], allow_failed_imports=False)

fpn_levels = [f'fpn{i}' for i in range(5)]
fpn_taps = {level: dict(module='neck', index=i) for i, level in enumerate(fpn_levels)}
model = dict(
    _delete_=True,  # the distiller replaces the inherited model
    type='MoKDDistiller',
    student={{_base_.model}},
    # A config path, 'mmdet::...', or dict(config=..., **overrides), e.g.
    # dict(config='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    #      bbox_head=dict(num_classes=4)) for a 4-class teacher.
    teacher='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher_ckpt='checkpoints/retinanet_r50_fpn_1x_coco.pth',
    student_taps=fpn_taps,
    teacher_taps=fpn_taps,
    distill_losses=dict(
        loss_fpn=dict(
            type='StandardizedFeatureLoss',
            student=fpn_levels,
            teacher=fpn_levels,
            connector=dict(type='IndefiniteSubspaceConnector', student_dim=256, teacher_dim=256),
        )
    ),
    objectives=dict(distill=['distill.*'], task=['student.*']),
)

# The student's SGD recipe stays; the wrapper balances the two objectives.
optim_wrapper = dict(
    type='MoKDOptimWrapper',
    constructor='MoKDOptimWrapperConstructor',
    balancer=dict(type='MoKDAmortized'),
)
model_wrapper_cfg = dict(type='MoKDDistributedDataParallel')
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
