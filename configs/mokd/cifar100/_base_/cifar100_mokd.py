# MoKD on CIFAR-100 (eq. 1 of appendix A):
#   L_distill = KL(student logits || teacher logits), T = 4 as in the CRD
#               literature (the paper gives no CIFAR temperature)
#             + standardized feature loss between the pooled features through
#               the indefinite-subspace connector (sizes from head.fc);
#   L_task    = the student's cross-entropy;
# weighted by the amortized rule of Algorithm 1.
_base_ = ['./cifar100.py']

model = dict(
    student_taps=dict(feat=dict(module='head.fc', input=True)),
    teacher_taps=dict(feat=dict(module='head.fc', input=True)),
    distill_losses=dict(
        loss_feat=dict(
            type='StandardizedFeatureLoss',
            student='feat',
            teacher='feat',
            connector=dict(type='IndefiniteSubspaceConnector'),
        )
    ),
)
optim_wrapper = dict(diagnostics_interval=100)
