"""The MoKD method in plain PyTorch (no OpenMMLab import): the loss
balancers, the connectors, the losses and the feature taps.
``mokd_mm.models`` and ``mokd_mm.engine`` adapt them to MMEngine."""
from .balancers import (CAGrad, DynamicWeightAverage, FixedWeights, GradDrop, IMTLG, MGDA,
                        Balancer, MoKDAmortized, MoKDExact, NonFiniteObjectiveError, PCGrad,
                        RandomLossWeighting, ScaleInvariant, UncertaintyWeighting,
                        frank_wolfe_min_norm_weights, min_norm_weights)
from .connectors import IndefiniteSubspaceConnector, LinearConnector, OrthogonalProjector
from .gradients import gradient_diagnostics, gram_matrix, objective_gradients
from .losses import (HardDistillationLoss, KLDivergenceLoss, SigmoidKLDivergenceLoss,
                     StandardizedFeatureLoss, TeacherLayerNormFeatureLoss, TokenMatchingLoss,
                     hard_distillation, kl_divergence, sigmoid_kl_divergence,
                     standardized_feature_distance, teacher_layer_norm_distance,
                     token_distance)
from .taps import FeatureTaps, TapSpec

__all__ = [
    'Balancer', 'MoKDAmortized', 'MoKDExact', 'FixedWeights', 'ScaleInvariant',
    'UncertaintyWeighting', 'DynamicWeightAverage', 'RandomLossWeighting', 'MGDA', 'PCGrad',
    'CAGrad', 'GradDrop', 'IMTLG', 'NonFiniteObjectiveError', 'min_norm_weights',
    'frank_wolfe_min_norm_weights', 'IndefiniteSubspaceConnector', 'LinearConnector',
    'OrthogonalProjector', 'gradient_diagnostics', 'gram_matrix', 'objective_gradients',
    'KLDivergenceLoss', 'StandardizedFeatureLoss', 'TokenMatchingLoss', 'kl_divergence',
    'standardized_feature_distance', 'token_distance', 'FeatureTaps', 'TapSpec',
    'HardDistillationLoss', 'TeacherLayerNormFeatureLoss', 'hard_distillation',
    'teacher_layer_norm_distance', 'SigmoidKLDivergenceLoss', 'sigmoid_kl_divergence'
]
