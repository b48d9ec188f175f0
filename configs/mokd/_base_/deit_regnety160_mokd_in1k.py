# MoKD on DeiT <- RegNetY-160 (paper, appendix A, eq. 1):
#   L_distill = KL(distillation-token logits || teacher logits), T = 1
#             + standardized feature loss between the student's mean final
#               patch token and the teacher's pooled final feature, through
#               the indefinite-subspace connector (eq. 16);
#   L_task    = label-smoothed cross-entropy of the class-token head;
# weighted by the amortized rule of Algorithm 1.
_base_ = ['./deit_regnety160_in1k.py']

model = dict(
    # (B, C) mean of the patch tokens after the final LayerNorm: backbone.ln1
    # returns (B, 2 + N, C) with the class and distillation tokens first.
    student_taps=dict(
        feat=dict(module='backbone.ln1', pool='mean', skip_tokens=2)),
    # (B, 3024) globally pooled last stage of RegNetY-160: the input of its
    # classifier (dropout between them is the identity in eval mode).
    teacher_taps=dict(feat=dict(module='model.head.fc', input=True)),
    distill_losses=dict(
        loss_kl=dict(
            type='KLDivergenceLoss',
            temperature=1.0,
            student='dist_logits',
            teacher='logits'),
        loss_feat=dict(
            type='StandardizedFeatureLoss',
            student='feat',
            teacher='feat',
            connector=dict(
                type='IndefiniteSubspaceConnector',
                student_dim=192,
                teacher_dim=3024))))

optim_wrapper = dict(mode='famo')
