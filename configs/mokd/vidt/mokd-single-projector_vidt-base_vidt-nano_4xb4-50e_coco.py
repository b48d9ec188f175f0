# Table 3, third row: subspace learning and multi-task optimization without the
# high-dimensional alignment: one VkD-style orthogonal projector of the student
# into the teacher's space per stream (no P_t, no D), MoKD weights.
_base_ = ['./mokd_vidt-base_vidt-nano_4xb4-50e_coco.py']
_connector = dict(type='OrthogonalProjector')
model = dict(
    distill_losses=dict(loss_patch=dict(connector=_connector), loss_neck=dict(connector=_connector))
)
