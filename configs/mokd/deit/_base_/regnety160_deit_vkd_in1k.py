# VkD (Miles et al., CVPR 2024), the single-projector baseline: the student's
# mean final patch token mapped into the teacher's 3024 channels by an
# orthogonal projector, smooth-L1 against the teacher's pooled feature
# layer-normalised without affine; KL(distillation-token logits || teacher),
# T = 1; cross-entropy of the class token; fixed weights 1 / 1.
_base_ = ['./regnety160_deit_kl-feat_in1k.py']

model = dict(
    distill_losses=dict(
        loss_feat=dict(
            type='TeacherLayerNormFeatureLoss', connector=dict(type='OrthogonalProjector')
        )
    )
)
optim_wrapper = dict(
    balancer=dict(_delete_=True, type='FixedWeights', weights=dict(distill=1.0, task=1.0))
)
