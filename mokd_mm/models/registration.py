"""Register the plain-PyTorch connectors and losses of ``mokd_mm.core`` in
MMEngine's root MODELS registry, so that configs of any scope (mmdet,
mmpretrain, mmengine) build them by type name."""

from mmengine.registry import MODELS

from mokd_mm.core import (
    HardDistillationLoss,
    IndefiniteSubspaceConnector,
    KLDivergenceLoss,
    LinearConnector,
    OrthogonalProjector,
    SigmoidKLDivergenceLoss,
    StandardizedFeatureLoss,
    TeacherLayerNormFeatureLoss,
    TokenMatchingLoss,
)

for _cls in (
    IndefiniteSubspaceConnector,
    OrthogonalProjector,
    LinearConnector,
    KLDivergenceLoss,
    StandardizedFeatureLoss,
    TokenMatchingLoss,
    HardDistillationLoss,
    TeacherLayerNormFeatureLoss,
    SigmoidKLDivergenceLoss,
):
    MODELS.register_module(module=_cls)
