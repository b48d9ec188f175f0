# VkD (Miles et al., CVPR 2024), the single-projector baseline: the student's
# mean final patch token mapped into the teacher's 3024 channels by an
# orthogonal projector, smooth-L1 against the teacher's pooled feature
# layer-normalised without affine; KL(distillation-token logits || teacher),
# T = 1; cross-entropy of the class token; fixed weights 1 / 1.
_base_ = ['./deit_regnety160_kl-feat_in1k.py']

model = dict(
    distill_losses=dict(
        loss_feat=dict(
            type='TeacherLayerNormFeatureLoss',
            connector=dict(
                type='OrthogonalProjector', student_dim=192,
                teacher_dim=3024))))

optim_wrapper = dict(balancer=dict(type='FixedWeights', weights=dict(distill=1.0, task=1.0)))
