# ViDT's optimizer: AdamW 1e-4, weight decay 1e-4, gradient norm clipped at
# 0.1, no weight decay on biases, norms and the [DET] token embeddings.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'det_tokens': dict(decay_mult=0.0), 'det_pos_embed': dict(decay_mult=0.0)},
    ),
)
