# ViDT model: Swin body with RAM + encoder-free deformable decoder.
# Variants pick `model.backbone.arch` (nano / tiny / small / base).
# `custom_imports` and `default_scope` live in ../vidt_coco_50e.py (keys may
# appear in only one base of a config).

model = dict(
    type='ViDT',
    num_queries=100,  # number of [DET] tokens
    # The official ViDT's padding masks (converted checkpoints need them);
    # 'batch_invariant' makes an image's outputs independent of its batch.
    padding_masks='official',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1,
    ),
    backbone=dict(
        type='SwinRAM',
        arch='tiny',
        cross_attn_stages=(3,),  # [DET] x [PATCH] in the last stage
        det_pos_dims=256,
        extra_level_channels=256,
        window_size=7,
        # ViDT starts from ImageNet weights of the Swin body; point this at
        # a checkpoint in SwinRAM's key layout to use them.
        init_cfg=None,
    ),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(  # dropout 0.1 on weights and residual
                embed_dims=256,
                num_heads=8,
                attn_drop=0.1,
                dropout_layer=dict(type='Dropout', drop_prob=0.1),
                batch_first=True,
            ),
            cross_attn_cfg=dict(
                embed_dims=256,
                num_heads=8,
                num_levels=4,
                num_points=4,
                dropout=0.1,
                batch_first=True,
            ),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, ffn_drop=0.1),
        ),
        post_norm_cfg=None,
    ),
    bbox_head=dict(
        type='DeformableDETRHead',
        num_classes=80,
        embed_dims=256,
        sync_cls_avg_factor=True,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0,
        ),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
    ),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
            ],
        )
    ),
    test_cfg=dict(max_per_img=100),
)
