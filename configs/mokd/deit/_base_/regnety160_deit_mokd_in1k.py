# MoKD on DeiT <- RegNetY-160 (paper, appendix A, eq. 1):
#   L_distill = KL(distillation-token logits || teacher logits), T = 1
#             + standardized feature loss between the student's mean final
#               patch token and the teacher's pooled final feature, through
#               the indefinite-subspace connector (eq. 16);
#   L_task    = label-smoothed cross-entropy of the class-token head;
# weighted by the amortized rule of Algorithm 1.
_base_ = ['./regnety160_deit_kl-feat_in1k.py']

model = dict(
    distill_losses=dict(
        loss_feat=dict(
            type='StandardizedFeatureLoss', connector=dict(type='IndefiniteSubspaceConnector')
        )
    )
)
optim_wrapper = dict(diagnostics_interval=100)
