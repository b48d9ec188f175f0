# The detection demo's student trained alone: the teacher's ViDT with a Swin
# body of width 16 and depths 1-1-1-1 and a narrower decoder FFN; the neck,
# decoder width and [DET] tokens stay the teacher's, so tokens match one to
# one.
_base_ = ['./vidt_swin-w32_shapes.py']
model = dict(
    backbone=dict(arch=dict(embed_dims=16, depths=(1, 1, 1, 1))),
    decoder=dict(layer_cfg=dict(ffn_cfg=dict(feedforward_channels=128))),
)
# The students' recipe: twice the teacher's learning rate (every student
# number in README.md and docs/benchmarks.md was measured at 1e-3) and a
# schedule shorter than its (tools/demo.py's --iters).
optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=100)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-7, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=max_iters))
