# MoKD for ViDT (paper, appendix A, eq. 2):
#   L_distill = L_patch + L_neck + L_head, L_task = L_cls + L_bbox + L_giou
# (the student's own losses, auxiliary levels included), weighted by the
# amortized rule. Features are aligned through indefinite-subspace
# connectors (one per matched stream); head outputs are matched by [DET]
# token index (teacher and student carry the same number of tokens).
_base_ = ['./vidt_distill.py']

_connector = dict(type='IndefiniteSubspaceConnector', student_dim=256, teacher_dim=256)
_head_taps = dict(
    head_cls=dict(module='bbox_head', index=0),  # (7, B, N, 80) logits
    head_box=dict(module='bbox_head', index=1))  # (7, B, N, 4) boxes
model = dict(
    student_taps=_head_taps,
    teacher_taps=_head_taps,
    distill_losses=dict(
        loss_patch=dict(
            type='StandardizedFeatureLoss', student={{_base_.patch_taps}},
            teacher={{_base_.patch_taps}}, connector=_connector),
        loss_neck=dict(
            type='StandardizedFeatureLoss', student={{_base_.det_taps}},
            teacher={{_base_.det_taps}}, connector=_connector),
        loss_head_cls=dict(
            type='SigmoidKLDivergenceLoss', student='head_cls', teacher='head_cls'),
        loss_head_box=dict(type='L1Loss', student='head_box', teacher='head_box')),
    objectives=dict(distill=['distill.*'], task=['student.*']))
optim_wrapper = dict(mode='famo')
