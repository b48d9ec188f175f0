# The detection demo's student trained alone: the teacher's ViDT with a Swin
# body of width 16 and depths 1-1-1-1 and a narrower decoder FFN; the neck,
# decoder width and [DET] tokens stay the teacher's, so tokens match one to
# one.
_base_ = ['./vidt_swin-w32_shapes.py']
model = dict(
    backbone=dict(arch=dict(embed_dims=16, depths=(1, 1, 1, 1))),
    decoder=dict(layer_cfg=dict(ffn_cfg=dict(feedforward_channels=128))),
)
