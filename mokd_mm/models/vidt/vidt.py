# Copyright (c) mokd_mm contributors. All rights reserved.
"""ViDT: the encoder-free detector around a :class:`SwinRAM` body."""

import copy
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.detectors import DeformableDETR, DetectionTransformer
from mmdet.models.layers import DeformableDetrTransformerDecoder, inverse_sigmoid
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import xavier_init
from torch import Tensor

from .padding import check_mode, neck_level_masks, padding_mask_from_samples

# The body's levels, [DET] tokens and positions, and the batch's pixel mask.
BodyOutputs = Tuple[Tuple[Tensor, ...], Tensor, Tensor, Optional[Tensor]]


class TokenProjection(ConvModule):
    """1x1 conv + GroupNorm applied to a token sequence.

    The tokens are laid out as an (N, 1) map, so GroupNorm takes its
    statistics over the channels of a group and all N tokens of a sample
    (as in the official ViDT), not per token.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (a multiple of 32).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size=1,
            bias=True,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=None,
        )

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, N, C_in) -> (B, N, C_out)."""
        x = tokens.transpose(1, 2).unsqueeze(-1)
        return super().forward(x).squeeze(-1).transpose(1, 2)


def masked_group_norm(x: Tensor, norm: nn.GroupNorm, padding: Tensor) -> Tensor:
    """``norm(x)`` with each sample's group statistics taken over its
    unpadded positions only.

    Args:
        x (Tensor): (B, C, H, W).
        norm (nn.GroupNorm): its groups, eps and affine parameters are used.
        padding (Tensor): (B, H, W), ``True`` on padding.
    """
    B, C, H, W = x.shape
    groups = x.view(B, norm.num_groups, -1, H, W)
    valid = (~padding).to(x.dtype)[:, None, None]
    count = valid.sum((2, 3, 4), keepdim=True) * groups.shape[2]
    mean = (groups * valid).sum((2, 3, 4), keepdim=True) / count
    var = (((groups - mean) * valid) ** 2).sum((2, 3, 4), keepdim=True) / count
    out = ((groups - mean) / torch.sqrt(var + norm.eps)).view(B, C, H, W)
    if norm.affine:
        out = out * norm.weight[:, None, None] + norm.bias[:, None, None]
    return out


def _pass_down(backbone: Dict, key: str, name: str, value) -> None:
    """Set ``backbone[key]`` to the detector's ``name`` argument ``value``,
    refusing a backbone config that already sets it differently."""
    given = backbone.get(key, value)
    if given != value:
        raise ValueError(
            f'backbone.{key} ({given!r}) differs from {name} ({value!r}); set {name} only'
        )
    backbone[key] = value


@MODELS.register_module()
class ViDT(DetectionTransformer):
    """ViDT: Vision and Detection Transformers (Song et al., ICLR 2022).

    The body (:class:`SwinRAM`) already lets [DET] tokens attend to patch
    tokens, so there is no transformer encoder. The neck projects the 4
    patch levels and the body's [DET] tokens and positions to
    ``embed_dims``, derives 2-d reference points from the projected
    positions, and runs a deformable decoder with iterative box refinement.
    The head predicts from ``decoder.num_layers + 1`` levels: level 0 is the
    projected body [DET] tokens (their box refinement sets the decoder's
    first reference boxes), levels 1.. are the decoder layers; all levels
    get auxiliary losses.

    Forward-hook taps (dotted module paths) for distillation:

    - ``input_projs.{0..3}``: projected patch levels, (B, embed_dims,
      H_l, W_l), strides 8, 16, 32, 64.
    - ``det_token_proj``: projected body [DET] tokens (B, N, embed_dims)
      (prediction level 0, the decoder's input query).
    - ``det_pos_proj``: projected [DET] positions (1, N, embed_dims).
    - ``decoder.layers.{0..L-1}``: decoder layer outputs (B, N,
      embed_dims); ``decoder`` gives all of them stacked (L, B, N,
      embed_dims) with their reference boxes.
    - ``bbox_head``: ``(cls_logits, boxes)`` of all ``L + 1`` prediction
      levels, shapes (L+1, B, N, num_classes) and (L+1, B, N, 4)
      (normalized cx, cy, w, h). ``bbox_head.reg_branches.*`` also run
      inside the decoder for refinement, so tap ``bbox_head`` rather than
      its branches.
    - ``backbone``: ``(levels, det_tokens, det_pos)`` of the body.

    Args:
        backbone (dict): Body config, a :class:`SwinRAM`. Its
            ``num_det_tokens`` is set from ``num_queries``.
        decoder (dict): Config of the deformable decoder (mmdet's
            ``DeformableDetrTransformerDecoder`` arguments).
        bbox_head (dict): Config of a ``DeformableDETRHead``; the detector
            sets ``num_pred_layer``, ``share_pred_layer`` and
            ``as_two_stage``.
        num_queries (int): Number of [DET] tokens. Defaults to 100.
        padding_masks (str): how padding is masked (:mod:`.padding`):
            ``'official'`` (default), as the official ViDT does, which
            converted official checkpoints need; or ``'batch_invariant'``,
            so that an image's outputs do not depend on the batch it is
            padded into. Sets the body's option.
        train_cfg (dict, optional): Training config of the head.
        test_cfg (dict, optional): Testing config of the head.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(
        self,
        backbone: ConfigType,
        decoder: ConfigType,
        bbox_head: ConfigType,
        num_queries: int = 100,
        padding_masks: str = 'official',
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        data_preprocessor: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        if num_queries < 1:
            raise ValueError(f'num_queries must be >= 1, got {num_queries}')
        backbone = copy.deepcopy(backbone)
        _pass_down(backbone, 'num_det_tokens', 'num_queries', num_queries)
        self.padding_masks = check_mode(padding_masks)
        _pass_down(backbone, 'padding_masks', 'padding_masks', padding_masks)
        bbox_head = copy.deepcopy(bbox_head)
        preset = {'num_pred_layer', 'share_pred_layer', 'as_two_stage'} & set(bbox_head)
        if preset:
            raise ValueError(
                f'bbox_head keys {sorted(preset)} are set by ViDT; remove them from the config'
            )
        # Level 0 predicts from the body [DET] tokens, then one level per
        # decoder layer, each with its own branches (box refinement).
        bbox_head.update(
            num_pred_layer=decoder['num_layers'] + 1, share_pred_layer=False, as_two_stage=False
        )
        super().__init__(
            backbone=backbone,
            decoder=decoder,
            bbox_head=bbox_head,
            num_queries=num_queries,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )

    def _init_layers(self) -> None:
        """Build the neck projections and the decoder."""
        self.decoder = DeformableDetrTransformerDecoder(**self.decoder)
        self.embed_dims = self.decoder.embed_dims
        num_levels = self.decoder.layers[0].cross_attn.num_levels
        if num_levels != len(self.backbone.out_channels):
            raise ValueError(
                f'decoder cross_attn_cfg.num_levels ({num_levels}) must '
                f'equal the body levels ({len(self.backbone.out_channels)})'
            )
        self.input_projs = nn.ModuleList(
            [
                ConvModule(
                    channels,
                    self.embed_dims,
                    kernel_size=1,
                    bias=True,
                    norm_cfg=dict(type='GN', num_groups=32),
                    act_cfg=None,
                )
                for channels in self.backbone.out_channels
            ]
        )
        self.det_token_proj = TokenProjection(self.backbone.det_channels, self.embed_dims)
        self.det_pos_proj = TokenProjection(self.backbone.det_pos_dims, self.embed_dims)
        self.reference_points_fc = nn.Linear(self.embed_dims, 2)

    def init_weights(self) -> None:
        """Xavier init for the neck and decoder, mmcv's for the sampling."""
        super().init_weights()
        for p in self.decoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.decoder.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
        for proj in [*self.input_projs, self.det_token_proj, self.det_pos_proj]:
            xavier_init(proj.conv, distribution='uniform', bias=0.0)
        xavier_init(self.reference_points_fc, distribution='uniform', bias=0.0)

    # The body needs the padding mask, which only the data samples carry,
    # so the three modes pass them to ``extract_feat``.
    def extract_feat(
        self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None
    ) -> BodyOutputs:
        """Run the body.

        Args:
            batch_inputs (Tensor): Images (B, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`], optional): Give
                the valid region of each image (``img_shape``) in the batch
                (``batch_input_shape``).

        Returns:
            tuple: ``(levels, det_tokens, det_pos)`` (see
            :meth:`SwinRAM.forward`) and the pixel mask (B, H, W) or None,
            computed here once for the body and the neck.
        """
        padding_mask = padding_mask_from_samples(batch_data_samples, batch_inputs.device)
        return (*self.backbone(batch_inputs, padding_mask), padding_mask)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Compute the losses of all prediction levels.

        Args:
            batch_inputs (Tensor): Images (B, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): With
                ``gt_instances``.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou`` of
            the last level and ``d{i}.*`` of the others.
        """
        img_feats = self.extract_feat(batch_inputs, batch_data_samples)
        head_inputs_dict = self.forward_transformer(img_feats, batch_data_samples)
        return self.bbox_head.loss(
            **head_inputs_dict,
            enc_outputs_class=None,
            enc_outputs_coord=None,
            batch_data_samples=batch_data_samples,
        )

    def predict(
        self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True
    ) -> SampleList:
        """Predict boxes from the last prediction level.

        Args:
            batch_inputs (Tensor): Images (B, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Image metas.
            rescale (bool): Whether to rescale boxes to the original image.

        Returns:
            list[:obj:`DetDataSample`]: Samples with ``pred_instances``.
        """
        img_feats = self.extract_feat(batch_inputs, batch_data_samples)
        head_inputs_dict = self.forward_transformer(img_feats, batch_data_samples)
        results_list = self.bbox_head.predict(
            **head_inputs_dict, rescale=rescale, batch_data_samples=batch_data_samples
        )
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(
        self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None
    ) -> Tuple[Tensor, Tensor]:
        """Raw head outputs of all levels: (cls logits, normalized boxes)."""
        img_feats = self.extract_feat(batch_inputs, batch_data_samples)
        head_inputs_dict = self.forward_transformer(img_feats, batch_data_samples)
        # Called as a module (not ``.forward``) so ``bbox_head`` hooks fire.
        return self.bbox_head(**head_inputs_dict)

    def forward_transformer(
        self, img_feats: BodyOutputs, batch_data_samples: OptSampleList = None
    ) -> Dict:
        """Neck and decoder: 'pre_transformer' -> 'forward_encoder' (the
        identity, ViDT has no encoder) -> 'pre_decoder' (the body [DET]
        tokens become the queries) -> 'forward_decoder'.

        Args:
            img_feats (tuple): :meth:`extract_feat`'s outputs.
            batch_data_samples (list[:obj:`DetDataSample`], optional): Image
                metas (unused: the pixel mask comes with ``img_feats``).

        Returns:
            dict: ``hidden_states`` (L+1, B, N, C) and ``references`` (the
            inputs of ``bbox_head``).
        """
        levels, det_tokens, det_pos, padding_mask = img_feats
        encoder_inputs_dict, decoder_inputs_dict = self.pre_transformer(levels, padding_mask)
        encoder_outputs_dict = self.forward_encoder(**encoder_inputs_dict)
        tmp_dec_in, head_inputs_dict = self.pre_decoder(
            det_tokens=det_tokens, det_pos=det_pos, **encoder_outputs_dict
        )
        decoder_inputs_dict.update(tmp_dec_in)
        head_inputs_dict.update(self.forward_decoder(**decoder_inputs_dict))
        return head_inputs_dict

    def pre_transformer(
        self, mlvl_feats: Sequence[Tensor], padding_mask: Optional[Tensor] = None
    ) -> Tuple[Dict, Dict]:
        """Project and flatten the patch levels and build their masks
        (:func:`.padding.neck_level_masks`, by ``padding_masks``).

        Args:
            mlvl_feats (Sequence[Tensor]): The body's patch levels, each
                (B, C_l, H_l, W_l).
            padding_mask (Tensor, optional): The pixel mask (B, H, W).

        Returns:
            tuple[dict, dict]: Inputs of :meth:`forward_encoder` (``feat``
            (B, S, C)) and of the decoder
            (``memory_mask``, ``spatial_shapes`` (levels, 2),
            ``level_start_index`` (levels,), ``valid_ratios`` (B, levels,
            2)).
        """
        batch_size = mlvl_feats[0].shape[0]
        shapes = [tuple(feat.shape[-2:]) for feat in mlvl_feats]
        masks = neck_level_masks(
            padding_mask, self.padding_masks, shapes, self.backbone.out_strides
        )
        feats = []
        for i, (proj, feat) in enumerate(zip(self.input_projs, mlvl_feats)):
            if masks is not None and self.padding_masks == 'batch_invariant':
                # GroupNorm's statistics from the image's tokens only.
                feat = masked_group_norm(proj.conv(feat), proj.norm, masks[i])
            else:
                feat = proj(feat)
            feats.append(feat.flatten(2).transpose(1, 2))
        feat_flatten = torch.cat(feats, 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=feat_flatten.device)
        level_start_index = torch.cat(
            (spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1])
        )
        if masks:
            mask_flatten = torch.cat([m.flatten(1) for m in masks], 1)
            valid_ratios = torch.stack([DeformableDETR.get_valid_ratio(m) for m in masks], 1)
        else:
            mask_flatten = None
            valid_ratios = feat_flatten.new_ones(batch_size, len(feats), 2)
        encoder_inputs_dict = dict(feat=feat_flatten)
        decoder_inputs_dict = dict(
            memory_mask=mask_flatten,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
        )
        return encoder_inputs_dict, decoder_inputs_dict

    def forward_encoder(self, feat: Tensor) -> Dict:
        """ViDT has no transformer encoder: the RAM body already mixed the
        patch tokens, so the memory is the projected patch tokens.

        Args:
            feat (Tensor): Flattened projected levels (B, S, C).

        Returns:
            dict: ``memory`` (B, S, C).
        """
        return dict(memory=feat)

    def pre_decoder(self, memory: Tensor, det_tokens: Tensor, det_pos: Tensor) -> Tuple[Dict, Dict]:
        """Turn the body's [DET] tokens into the decoder queries.

        Args:
            memory (Tensor): (B, S, C).
            det_tokens (Tensor): Body [DET] tokens (B, N, C_det).
            det_pos (Tensor): [DET] positions (1, N, C_pos).

        Returns:
            tuple[dict, dict]: Decoder inputs ``query`` (B, N, C),
            ``query_pos`` (B, N, C), ``memory`` and ``reference_points``
            (B, N, 2); and the (empty) extra head inputs.
        """
        query = self.det_token_proj(det_tokens)
        query_pos = self.det_pos_proj(det_pos).expand(query.shape[0], -1, -1)
        reference_points = self.reference_points_fc(query_pos).sigmoid()
        decoder_inputs_dict = dict(
            query=query, query_pos=query_pos, memory=memory, reference_points=reference_points
        )
        return decoder_inputs_dict, dict()

    def forward_decoder(
        self,
        query: Tensor,
        query_pos: Tensor,
        memory: Tensor,
        memory_mask: Optional[Tensor],
        reference_points: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        valid_ratios: Tensor,
    ) -> Dict:
        """Refine the references with level 0, then decode.

        Args:
            query (Tensor): Projected body [DET] tokens (B, N, C).
            query_pos (Tensor): Projected [DET] positions (B, N, C).
            memory (Tensor): (B, S, C).
            memory_mask (Tensor, optional): (B, S), ``True`` on padding.
            reference_points (Tensor): Initial centers (B, N, 2).
            spatial_shapes (Tensor): (levels, 2).
            level_start_index (Tensor): (levels,).
            valid_ratios (Tensor): (B, levels, 2).

        Returns:
            dict: ``hidden_states`` (L+1, B, N, C): the query then each
            decoder layer; ``references``: L+2 tensors, the initial centers
            (B, N, 2) then boxes (B, N, 4), of which the head uses the first
            L+1.
        """
        reg_branches = self.bbox_head.reg_branches
        # Level 0 refines the 2-d centers into the first reference boxes,
        # as the official ViDT does before its first decoder layer.
        delta = reg_branches[0](query)
        first_boxes = (
            torch.cat([delta[..., :2] + inverse_sigmoid(reference_points), delta[..., 2:]], -1)
            .sigmoid()
            .detach()
        )
        inter_states, inter_references = self.decoder(
            query=query,
            value=memory,
            query_pos=query_pos,
            key_padding_mask=memory_mask,
            reference_points=first_boxes,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            reg_branches=reg_branches[1:],
        )
        hidden_states = torch.cat([query.unsqueeze(0), inter_states], 0)
        references = [reference_points, first_boxes, *inter_references]
        return dict(hidden_states=hidden_states, references=references)
