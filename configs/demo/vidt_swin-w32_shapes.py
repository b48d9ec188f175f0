# The detection demo's teacher: a small ViDT (Swin body of width 32 with
# depths 1-1-2-1, neck and decoder 128-d, 30 [DET] tokens) trained from
# scratch on the generated shape set at 192 px, batch 8, for a few hundred
# iterations (tools/demo.py sets the count).
_base_ = [
    '../vidt/_base_/models/vidt_swin.py',
    '../_base_/datasets/shapes_coco.py',
    'mmdet::_base_/default_runtime.py',
    '../vidt/_base_/vidt_optimizer.py',
]
custom_imports = dict(imports=['mokd_mm.models.vidt'], allow_failed_imports=False)
default_scope = 'mmdet'

embed_dims = 128  # neck and decoder width
model = dict(
    num_queries=30,
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
        det_pos_dims=embed_dims,
        extra_level_channels=embed_dims,
    ),
    decoder=dict(
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            cross_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256),
        )
    ),
    bbox_head=dict(num_classes=4, embed_dims=embed_dims),
    test_cfg=dict(max_per_img=30),
)

max_iters = 600  # tools/demo.py's --teacher-iters
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# ViDT's optimizer at a 5x higher learning rate, for training from scratch
# in a few hundred steps (docs/design.md, "Schedule": 1e-3 gave less AP on
# each of four seeds).
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-7, by_epoch=False)]
default_hooks = dict(
    # Validation scalars keyed by iteration (mmengine's default is the epoch).
    logger=dict(interval=20, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False)
# One process x 8 images; the learning rate above is for that batch.
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
