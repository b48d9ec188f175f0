# The ViDT distillation methods as distiller fragments (variables only, so
# this file can sit beside a detector config in a _base_ list). A setting
# base (vidt_coco.py: COCO; ../../shapes/_base_/vidt_shapes.py: the demo) builds the
# MoKDDistiller; a method config merges one fragment into it:
#   model = {{_base_.mokd}}
# Connector sizes default to the tapped modules' channels.

# The token streams tapped on both detectors (ViDT's module paths, see its
# docstring): the 4 projected patch levels, the projected body [DET] tokens
# and the 6 decoder layers' outputs.
patch_taps = [f'patch{i}' for i in range(4)]
det_taps = ['det_body'] + [f'dec{i}' for i in range(6)]
stream_taps = patch_taps + det_taps
vidt_taps = dict(
    **{f'patch{i}': f'input_projs.{i}' for i in range(4)},
    det_body='det_token_proj',
    **{f'dec{i}': f'decoder.layers.{i}' for i in range(6)},
)

# MoKD (paper, appendix A, eq. 2):
#   L_distill = L_patch + L_neck + L_head, L_task = L_cls + L_bbox + L_giou
# (the student's own losses, auxiliary levels included), weighted by the
# amortized rule. Features are aligned through indefinite-subspace
# connectors (one per matched stream); head outputs are matched by [DET]
# token index (teacher and student carry the same number of tokens). Each
# stream counts once: the official token matching's double count of the body
# [DET] tokens (below) comes from its decoder list, not from MoKD, whose
# streams each have their own connector (docs/design.md).
vidt_head_taps = dict(
    head_cls=dict(module='bbox_head', index=0),  # (7, B, N, classes) logits
    head_box=dict(module='bbox_head', index=1),
)  # (7, B, N, 4) boxes
mokd = dict(
    student_taps=dict(**vidt_taps, **vidt_head_taps),
    teacher_taps=dict(**vidt_taps, **vidt_head_taps),
    distill_losses=dict(
        loss_patch=dict(
            type='StandardizedFeatureLoss',
            student=patch_taps,
            teacher=patch_taps,
            connector=dict(type='IndefiniteSubspaceConnector'),
        ),
        loss_neck=dict(
            type='StandardizedFeatureLoss',
            student=det_taps,
            teacher=det_taps,
            connector=dict(type='IndefiniteSubspaceConnector'),
        ),
        loss_head_cls=dict(type='SigmoidKLDivergenceLoss', student='head_cls', teacher='head_cls'),
        loss_head_box=dict(type='L1Loss', student='head_box', teacher='head_box'),
    ),
    objectives=dict(distill=['distill.*'], task=['student.*']),
)

# ViDT's own token-matching distillation (the 'Token-Matching' rows): every
# stream matched by index without connectors (student and teacher need the
# same neck width); square root of the summed mean distances, weight 4.
# The official loss (naver-ai/vidt, methods/vidt/criterion.py) matches the
# decoder's intermediate list, whose first entry is the decoder's input: the
# projected body [DET] tokens, i.e. `det_body` again. That stream counts twice
# there, so it is listed twice here.
token_matching_streams = patch_taps + ['det_body'] + det_taps
token_matching = dict(
    student_taps=vidt_taps,
    teacher_taps=vidt_taps,
    distill_losses=dict(
        loss_tokens=dict(
            type='TokenMatchingLoss',
            student=token_matching_streams,
            teacher=token_matching_streams,
            loss_weight=4.0,
        )
    ),
)

# VkD (the 'VkD' rows): per matched stream an orthogonal projector with
# per-channel scale and bias on the student side, both sides standardized
# per channel, smooth-L1, streams summed, weight 4.
vkd = dict(
    student_taps=vidt_taps,
    teacher_taps=vidt_taps,
    distill_losses=dict(
        loss_tokens=dict(
            type='StandardizedFeatureLoss',
            student=stream_taps,
            teacher=stream_taps,
            loss_weight=4.0,
            connector=dict(type='OrthogonalProjector', affine=True),
        )
    ),
)
