"""The MoKD method in plain PyTorch (no OpenMMLab import): the weighting
rules, the connectors, the losses and the feature taps. ``mokd_mm.models``
and ``mokd_mm.engine`` adapt them to MMEngine."""
from .connectors import (IndefiniteSubspaceConnector, LinearConnector,
                         OrthogonalProjector)
from .gradients import gradient_diagnostics, gram_matrix, objective_gradients
from .losses import (HardDistillationLoss, KLDivergenceLoss, SigmoidKLDivergenceLoss,
                     StandardizedFeatureLoss, TeacherLayerNormFeatureLoss,
                     TokenMatchingLoss, hard_distillation, kl_divergence,
                     sigmoid_kl_divergence,
                     standardized_feature_distance,
                     teacher_layer_norm_distance, token_distance)
from .taps import FeatureTaps, TapSpec
from .weighting import (AmortizedWeighting, NonFiniteObjectiveError,
                        min_norm_weights)

__all__ = [
    'IndefiniteSubspaceConnector', 'LinearConnector', 'OrthogonalProjector',
    'gradient_diagnostics', 'gram_matrix', 'objective_gradients',
    'KLDivergenceLoss', 'StandardizedFeatureLoss', 'TokenMatchingLoss',
    'kl_divergence', 'standardized_feature_distance', 'token_distance',
    'FeatureTaps', 'TapSpec', 'AmortizedWeighting', 'NonFiniteObjectiveError',
    'min_norm_weights', 'HardDistillationLoss', 'TeacherLayerNormFeatureLoss',
    'hard_distillation', 'teacher_layer_norm_distance', 'SigmoidKLDivergenceLoss',
    'sigmoid_kl_divergence'
]
