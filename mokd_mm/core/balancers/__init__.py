"""Loss balancers: rules that turn the K objectives of a training step into
one update, behind one interface (:class:`Balancer`). Plain PyTorch.

Rules that need only the objectives' values (one backward pass):
:class:`MoKDAmortized` (MoKD's Algorithm 1 after FAMO; it also learns from
the objectives after the step), :class:`FixedWeights` (eq. 3),
:class:`ScaleInvariant`, :class:`UncertaintyWeighting`,
:class:`DynamicWeightAverage` and :class:`RandomLossWeighting`.

Rules that need the per-objective gradients (one backward pass per
objective): :class:`MoKDExact` (Theorem 3.1), :class:`MGDA`,
:class:`PCGrad`, :class:`CAGrad`, :class:`GradDrop`, :class:`IMTLG` and
:class:`DOT` (the distillation-specific rule, with momenta of its own),
and every aggregator of TorchJD through :class:`TorchJDBalancer`.
"""

from .base import (
    Balancer,
    NonFiniteObjectiveError,
    NoObjectiveError,
    SeededBalancer,
    build_optimizer,
    scatter_to_grads,
)
from .dot import DOT
from .gradient_surgery import IMTLG, MGDA, CAGrad, GradDrop, PCGrad
from .loss_weighting import (
    DynamicWeightAverage,
    FixedWeights,
    RandomLossWeighting,
    ScaleInvariant,
    UncertaintyWeighting,
)
from .min_norm import frank_wolfe_min_norm_weights, min_norm_weights
from .mokd import MoKDAmortized, MoKDExact
from .torchjd import TorchJDBalancer

RULES = (
    MoKDAmortized,
    MoKDExact,
    FixedWeights,
    ScaleInvariant,
    UncertaintyWeighting,
    DynamicWeightAverage,
    RandomLossWeighting,
    MGDA,
    PCGrad,
    CAGrad,
    GradDrop,
    IMTLG,
    DOT,
    TorchJDBalancer,
)

__all__ = [
    'Balancer',
    'SeededBalancer',
    'NonFiniteObjectiveError',
    'NoObjectiveError',
    'build_optimizer',
    'scatter_to_grads',
    'MoKDAmortized',
    'MoKDExact',
    'FixedWeights',
    'ScaleInvariant',
    'UncertaintyWeighting',
    'DynamicWeightAverage',
    'RandomLossWeighting',
    'MGDA',
    'PCGrad',
    'CAGrad',
    'GradDrop',
    'IMTLG',
    'DOT',
    'TorchJDBalancer',
    'min_norm_weights',
    'frank_wolfe_min_norm_weights',
    'RULES',
]
