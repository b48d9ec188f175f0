"""DeiT's two-token head, trainable by a distiller."""

from typing import List, Sequence, Tuple

import torch
from mmpretrain.models.heads import DeiTClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class DeiTDistillationHead(DeiTClsHead):
    """The head of a distilled DeiT (Touvron et al., 2021) for training.

    Two linear classifiers read the backbone's class token and distillation
    token (:class:`~mmpretrain.models.DistilledVisionTransformer` with
    ``out_type='cls_token'``):

    * ``layers.head`` (class token) is trained by :meth:`loss` against the
      labels (soft labels under Mixup / CutMix, as mmpretrain's heads).
    * ``layers.head_dist`` (distillation token) gets no loss here: a
      distiller taps its output, ``(B, num_classes)``, at
      ``'head.layers.head_dist'`` and trains it against the teacher.

    :meth:`forward` (and so ``predict`` and ``mode='tensor'``) averages the
    two classifiers' logits, DeiT's evaluation. The parameter names are
    those of mmpretrain's :class:`~mmpretrain.models.heads.DeiTClsHead`, so
    a trained student loads into mmpretrain's distilled-DeiT configs and
    their published checkpoints load here.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the tokens, C.
        hidden_dim (int, optional): A hidden layer (shared by both tokens)
            before the classifiers. Defaults to None (none).
        init_cfg (dict): Defaults to DeiT's initialisation of its heads,
            truncated normal with std 0.02 and zero bias.
        **kwargs: ``loss``, ``topk``, ``cal_acc``, ``act_cfg`` of
            :class:`~mmpretrain.models.heads.VisionTransformerClsHead`.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        init_cfg: dict = dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        **kwargs,
    ):
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg, **kwargs
        )

    def pre_logits(
        self, feats: Sequence[Tuple[torch.Tensor, torch.Tensor]]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The class and distillation tokens of the last stage, each
        (B, C) (or (B, hidden_dim) after the hidden layer)."""
        feat = feats[-1]
        if not isinstance(feat, (tuple, list)) or len(feat) not in (2, 3):
            got = tuple(feat.shape) if torch.is_tensor(feat) else type(feat).__name__
            raise ValueError(
                'DeiTDistillationHead needs the (class token, distillation '
                'token) pair of DistilledVisionTransformer with '
                f"out_type='cls_token', got {got}"
            )
        return super().pre_logits(feats)

    def token_logits(
        self, feats: Sequence[Tuple[torch.Tensor, torch.Tensor]]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits of the class-token and distillation-token classifiers,
        each (B, num_classes)."""
        cls_token, dist_token = self.pre_logits(feats)
        return self.layers.head(cls_token), self.layers.head_dist(dist_token)

    def forward(self, feats: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The mean of both classifiers' logits, (B, num_classes)."""
        cls_logits, dist_logits = self.token_logits(feats)
        return (cls_logits + dist_logits) / 2

    def loss(
        self,
        feats: Sequence[Tuple[torch.Tensor, torch.Tensor]],
        data_samples: List[DataSample],
        **kwargs,
    ) -> dict:
        """The loss of the class-token classifier against the labels.

        Both classifiers run, so that a tap on ``layers.head_dist`` records
        the distillation logits of this batch.

        Returns:
            dict[str, Tensor]: ``loss`` (and accuracies with ``cal_acc``).
        """
        cls_logits, _ = self.token_logits(feats)
        return self._get_loss(cls_logits, data_samples, **kwargs)
