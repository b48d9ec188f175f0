# What MoKD and VkD share on DeiT <- RegNetY-160: KL(distillation-token logits
# || teacher logits) at T = 1, and a feature loss between
#   student: the mean of the final patch tokens (B, C), after the last
#            LayerNorm (backbone.ln1 returns (B, 2 + N, C), class and
#            distillation tokens first);
#   teacher: RegNetY-160's globally pooled last stage (B, 3024), the input of
#            its classifier (the dropout between them is the identity in eval
#            mode).
# The method configs choose the feature loss and its connector; the
# connector's sizes come from the tapped layers (LayerNorm, Linear).
_base_ = ['./regnety160_deit_in1k.py']

model = dict(
    student_taps=dict(feat=dict(module='backbone.ln1', pool='mean', skip_tokens=2)),
    teacher_taps=dict(feat=dict(module='model.head.fc', input=True)),
    distill_losses=dict(
        loss_kl=dict(
            type='KLDivergenceLoss', temperature=1.0, student='dist_logits', teacher='logits'
        ),
        loss_feat=dict(student='feat', teacher='feat'),
    ),
)
