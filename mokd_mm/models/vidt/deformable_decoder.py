# Copyright (c) mokd_mm contributors. All rights reserved.
"""mmdet's Deformable DETR decoder with the fallback deformable attention.

Same module tree, state-dict keys, forward and outputs as
``DeformableDetrTransformerDecoder``; only the cross-attention class differs
(see :mod:`.cuda_fallback`).
"""

from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers import (
    DeformableDetrTransformerDecoder,
    DeformableDetrTransformerDecoderLayer,
)
from mmengine.model import ModuleList

from .cuda_fallback import FallbackMultiScaleDeformableAttention


class FallbackDeformableDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """mmdet's Deformable DETR decoder layer with the fallback attention."""

    def _init_layers(self) -> None:
        """Initialize self_attn, cross_attn, ffn, and norms."""
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = FallbackMultiScaleDeformableAttention(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(
            [build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(3)]
        )


class FallbackDeformableDecoder(DeformableDetrTransformerDecoder):
    """mmdet's Deformable DETR decoder built from
    :class:`FallbackDeformableDecoderLayer`; forward and outputs unchanged."""

    def _init_layers(self) -> None:
        """Initialize decoder layers."""
        if self.post_norm_cfg is not None:
            raise ValueError(f'post_norm_cfg must be None for {type(self).__name__}')
        self.layers = ModuleList(
            [FallbackDeformableDecoderLayer(**self.layer_cfg) for _ in range(self.num_layers)]
        )
        self.embed_dims = self.layers[0].embed_dims
