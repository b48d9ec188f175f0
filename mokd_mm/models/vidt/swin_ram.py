# Copyright (c) mokd_mm contributors. All rights reserved.
"""Swin Transformer with the Reconfigured Attention Module (RAM) of ViDT.

ViDT (Song et al., ICLR 2022) turns a Swin Transformer into a standalone
detector body: learnable [DET] tokens travel through every stage beside the
[PATCH] tokens and share each block's weights. Patch tokens keep (shifted)
window self-attention and never see [DET] tokens; [DET] tokens attend to
[DET] tokens only, except in the cross-attention stages, where they attend
to every patch token of the stage and to the [DET] tokens.
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import build_dropout
from mmcv.cnn.bricks.transformer import FFN, PatchEmbed
from mmdet.models.layers import SinePositionalEncoding
from mmdet.registry import MODELS
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from timm.models.swin_transformer import (
    get_relative_position_index,
    window_partition,
    window_reverse,
)
from torch import Tensor

from .padding import body_cross_attention_masks, check_mode

HWShape = Tuple[int, int]


# Blocked attention scores get this added, as the official ViDT (and Swin)
# do: exp(-100) is negligible next to any unblocked score, and a row whose
# keys are all blocked (a window of padding) stays finite.
BLOCKED = -100.0


def to_windows(x: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (B * num_windows, window_size**2, C), H and W multiples
    of ``window_size`` (timm's ``window_partition``)."""
    return window_partition(x, (window_size, window_size)).flatten(1, 2)


def from_windows(windows: Tensor, window_size: int, H: int, W: int) -> Tensor:
    """Inverse of :func:`to_windows`: (B * num_windows, L, C) -> (B, H, W, C)."""
    C = windows.shape[-1]
    return window_reverse(
        windows.view(-1, window_size, window_size, C), (window_size, window_size), H, W
    )


def shift_region_mask(
    H: int, W: int, window_size: int, shift_size: int, device: torch.device
) -> Tensor:
    """Which token pairs a shifted window must not connect.

    After the cyclic shift, a window at the border holds tokens from opposite
    sides of the map; tokens of different regions are blocked.

    Args:
        H (int): Height of the (window-aligned) token map.
        W (int): Width of the (window-aligned) token map.
        window_size (int): Window side.
        shift_size (int): Cyclic shift.
        device (torch.device): Device of the mask.

    Returns:
        Tensor: Bool mask of shape (num_windows, L, L), ``L = window_size**2``,
        ``True`` where attention is blocked.
    """
    region = torch.zeros((1, H, W, 1), device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for h in bounds:
        for w in bounds:
            region[:, h, w, :] = label
            label += 1
    region = to_windows(region, window_size).squeeze(-1)
    return region.unsqueeze(1) != region.unsqueeze(2)


def additive(blocked: Optional[Tensor], dtype: torch.dtype) -> Optional[Tensor]:
    """A bool block mask as scores to add (0 or :data:`BLOCKED`)."""
    if blocked is None:
        return None
    return torch.zeros(blocked.shape, dtype=dtype, device=blocked.device).masked_fill(
        blocked, BLOCKED
    )


class ReconfiguredAttention(BaseModule):
    """Reconfigured Attention Module (RAM) of ViDT.

    One set of projections (``qkv``, ``proj``, relative position bias) serves
    three attentions:

    - [PATCH] x [PATCH]: window self-attention with relative position bias,
      exactly as in Swin;
    - [DET] x [DET]: global self-attention among the [DET] tokens;
    - [DET] x [PATCH]: only when ``cross_patch`` is given, the [DET] queries
      additionally attend to every patch token of the stage (keys and values
      of the patch tokens come from the same ``qkv`` projection).

    Patch tokens never attend to [DET] tokens. Both attentions run through
    ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels where
    the device has them) with additive masks.

    Args:
        embed_dims (int): Token channels.
        num_heads (int): Attention heads.
        window_size (int): Window side of the patch self-attention.
        qkv_bias (bool): Whether the qkv projection has a bias.
            Defaults to True.
        attn_drop_rate (float): Dropout on attention weights. Defaults to 0.
        proj_drop_rate (float): Dropout after the output projection.
            Defaults to 0.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        window_size: int,
        qkv_bias: bool = True,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        # Derived from the window size, so it is not part of the state dict.
        self.register_buffer(
            'relative_position_index',
            get_relative_position_index(window_size, window_size),
            persistent=False,
        )
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop_rate = attn_drop_rate
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def init_weights(self) -> None:
        """Initialize the relative position bias table as in Swin."""
        super().init_weights()
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _split_heads(self, x: Tensor, parts: int) -> Tuple[Tensor, ...]:
        """(..., L, parts * C) -> ``parts`` tensors of (..., heads, L, C/heads)."""
        x = x.unflatten(-1, (parts, self.num_heads, -1)).movedim(-3, 0).transpose(-3, -2)
        return x.unbind(0)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        """Scaled dot-product attention with ``mask`` added to the scores;
        (B, heads, L, C/heads) -> (B, L, C), ``mask`` 4-D or ``None``."""
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop_rate if self.training else 0.0
        )
        return out.transpose(-3, -2).flatten(-2)

    def forward(
        self,
        patch_windows: Tensor,
        det: Tensor,
        window_mask: Optional[Tensor] = None,
        cross_patch: Optional[Tensor] = None,
        cross_mask: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor]:
        """Attend patch tokens within windows and [DET] tokens globally.

        Args:
            patch_windows (Tensor): Window-partitioned patch tokens of shape
                (B * num_windows, L, C), ``L = window_size**2``, as timm's
                ``window_partition`` orders them.
            det (Tensor): [DET] tokens (with their positional embedding
                added) of shape (B, N, C).
            window_mask (Tensor, optional): Scores added to the window
                attention, broadcastable to (B, num_windows, heads, L, L)
                (:data:`BLOCKED` between shift regions and, in
                ``'batch_invariant'`` mode, on padded keys).
            cross_patch (Tensor, optional): Patch tokens (with their
                positional embedding added) of shape (B, H*W, C) that the
                [DET] tokens attend to. ``None`` restricts [DET] tokens to
                [DET] x [DET] attention.
            cross_mask (Tensor, optional): Scores added to the [DET]
                queries' keys, (B, 1, 1, H*W + N): :data:`BLOCKED` on padded
                patch tokens.

        Returns:
            tuple[Tensor, Tensor]: Patch windows of shape (B * num_windows,
            L, C) and [DET] tokens of shape (B, N, C).
        """
        B, L = det.shape[0], patch_windows.shape[1]
        rel_bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        rel_bias = rel_bias.view(L, L, -1).permute(2, 0, 1).contiguous().to(patch_windows.dtype)
        window_scores = rel_bias if window_mask is None else rel_bias + window_mask
        # The scores folded to the windows' batch dimension (a view where
        # they are broadcast): torch's fused CPU kernel takes only 4-D
        # queries and masks; other shapes fall back to a 4 times slower path.
        num_windows = patch_windows.shape[0] // B
        window_scores = window_scores.expand(B, num_windows, *window_scores.shape[-3:])
        q, k, v = self._split_heads(self.qkv(patch_windows), 3)
        patch_out = self._attend(q, k, v, window_scores.flatten(0, 1))

        det_q, det_k, det_v = self._split_heads(self.qkv(det), 3)
        if cross_patch is not None:
            # Only keys and values of the patch tokens are needed: project
            # with the key/value rows of the shared qkv weight.
            C = self.embed_dims
            kv_bias = None if self.qkv.bias is None else self.qkv.bias[C:]
            patch_k, patch_v = self._split_heads(
                F.linear(cross_patch, self.qkv.weight[C:], kv_bias), 2
            )
            det_k = torch.cat([patch_k, det_k], dim=-2)
            det_v = torch.cat([patch_v, det_v], dim=-2)
        det_out = self._attend(det_q, det_k, det_v, cross_mask)

        patch_out = self.proj_drop(self.proj(patch_out))
        det_out = self.proj_drop(self.proj(det_out))
        return patch_out, det_out


class SwinRAMBlock(BaseModule):
    """A Swin block whose attention is the RAM.

    Patch and [DET] tokens share the norms, the RAM and the FFN. The [DET]
    positional embedding (shared by all blocks, ``det_pos_dims`` channels)
    is projected to this block's width and added to the normalized [DET]
    tokens before attention.

    Args:
        embed_dims (int): Token channels.
        num_heads (int): Attention heads.
        window_size (int): Window side.
        shift_size (int): Cyclic shift of the windows (0: regular windows).
        det_pos_dims (int): Channels of the [DET] positional embedding.
        mlp_ratio (float): FFN hidden channels / ``embed_dims``.
        qkv_bias (bool): Whether the qkv projection has a bias.
        drop_rate (float): Dropout after attention and inside the FFN.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of both residual branches.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        det_pos_dims: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ReconfiguredAttention(
            embed_dims,
            num_heads,
            window_size,
            qkv_bias=qkv_bias,
            attn_drop_rate=attn_drop_rate,
            proj_drop_rate=drop_rate,
        )
        self.drop_path = build_dropout(dict(type='DropPath', drop_prob=drop_path_rate))
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=int(embed_dims * mlp_ratio),
            num_fcs=2,
            ffn_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
            act_cfg=dict(type='GELU'),
            add_identity=True,
        )
        self.det_pos_proj = nn.Linear(det_pos_dims, embed_dims)

    def _to_windows(self, patch: Tensor, hw_shape: HWShape) -> Tensor:
        """(B, H*W, C) -> padded, shifted windows (B * nW, L, C)."""
        H, W = hw_shape
        x = patch.view(patch.shape[0], H, W, -1)
        pad_b = (-H) % self.window_size
        pad_r = (-W) % self.window_size
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        if self.shift_size:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        return to_windows(x, self.window_size)

    def _from_windows(self, windows: Tensor, hw_shape: HWShape) -> Tensor:
        """Inverse of :meth:`_to_windows`: (B * nW, L, C) -> (B, H*W, C)."""
        H, W = hw_shape
        Hp = H + (-H) % self.window_size
        Wp = W + (-W) % self.window_size
        x = from_windows(windows, self.window_size, Hp, Wp)
        if self.shift_size:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        return x[:, :H, :W, :].reshape(x.shape[0], H * W, -1)

    def forward(
        self,
        patch: Tensor,
        det: Tensor,
        hw_shape: HWShape,
        det_pos: Tensor,
        window_mask: Optional[Tensor] = None,
        cross_pos: Optional[Tensor] = None,
        cross_mask: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor]:
        """Forward one block.

        Args:
            patch (Tensor): Patch tokens of shape (B, H*W, C).
            det (Tensor): [DET] tokens of shape (B, N, C).
            hw_shape (tuple[int, int]): (H, W) of the patch token map.
            det_pos (Tensor): [DET] positional embedding of shape
                (1, N, det_pos_dims).
            window_mask (Tensor, optional): Scores added to the window
                attention for this block's shift, see
                :class:`ReconfiguredAttention`.
            cross_pos (Tensor, optional): Positional embedding of shape
                (B, H*W, C) of the patch tokens. Given only in cross-attention
                stages, where it switches the [DET] x [PATCH] attention on.
            cross_mask (Tensor, optional): Scores added to the [DET]
                queries' keys, see :class:`ReconfiguredAttention`.

        Returns:
            tuple[Tensor, Tensor]: Patch tokens (B, H*W, C) and [DET] tokens
            (B, N, C).
        """
        num_patch = patch.shape[1]
        x = torch.cat([patch, det], dim=1)
        patch_normed, det_normed = self.norm1(x).split([num_patch, det.shape[1]], dim=1)
        det_normed = det_normed + self.det_pos_proj(det_pos)
        cross_patch = None
        if cross_pos is not None:
            # [DET] x [PATCH] attention sees the unshifted, unpadded map.
            cross_patch = patch_normed + cross_pos
        windows, det_out = self.attn(
            self._to_windows(patch_normed, hw_shape),
            det_normed,
            window_mask,
            cross_patch,
            cross_mask,
        )
        attn_out = torch.cat([self._from_windows(windows, hw_shape), det_out], dim=1)
        # One residual over the joint sequence, so stochastic depth drops a
        # sample's patch and [DET] branches together.
        x = x + self.drop_path(attn_out)
        x = self.ffn(self.norm2(x), identity=x)
        return x.split([num_patch, det.shape[1]], dim=1)


class PatchDetMerging(BaseModule):
    """2x2 patch merging that also widens the [DET] tokens.

    Patch tokens: each 2x2 neighbourhood is concatenated (order: (0, 0),
    (1, 0), (0, 1), (1, 1) in (row, column)), normalized and reduced, halving
    the resolution. [DET] tokens have no spatial layout, so each is repeated
    four times along channels and goes through the same norm and reduction.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(
        self, in_channels: int, out_channels: int, init_cfg: Optional[dict] = None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm = nn.LayerNorm(4 * in_channels)
        self.reduction = nn.Linear(4 * in_channels, out_channels, bias=False)

    def forward(
        self, patch: Tensor, hw_shape: HWShape, det: Optional[Tensor] = None
    ) -> Tuple[Tensor, HWShape, Optional[Tensor]]:
        """Merge.

        Args:
            patch (Tensor): Patch tokens of shape (B, H*W, C).
            hw_shape (tuple[int, int]): (H, W) of the patch token map.
            det (Tensor, optional): [DET] tokens of shape (B, N, C).

        Returns:
            tuple: Merged patch tokens (B, ceil(H/2)*ceil(W/2), C_out), their
            (H, W), and the merged [DET] tokens (B, N, C_out) or ``None``.
        """
        H, W = hw_shape
        x = patch.view(patch.shape[0], H, W, -1)
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat(
            [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1
        )
        out_hw = (x.shape[1], x.shape[2])
        merged = self.reduction(self.norm(x.flatten(1, 2)))
        if det is not None:
            det = self.reduction(self.norm(det.repeat(1, 1, 4)))
        return merged, out_hw, det


class SwinRAMStage(BaseModule):
    """A stage of :class:`SwinRAM`: blocks with alternating window shifts.

    The stage builds the attention masks once and shares them across its
    blocks: the shift-region mask, the padding mask of the windows, and, in a
    cross-attention stage, the sine positional embedding of the patch tokens
    and their padding mask for the [DET] x [PATCH] attention.

    Args:
        embed_dims (int): Token channels.
        depth (int): Number of blocks.
        num_heads (int): Attention heads.
        window_size (int): Window side.
        det_pos_dims (int): Channels of the [DET] positional embedding.
        cross_attn (bool): Whether [DET] tokens attend to patch tokens.
        downsample_channels (int): Output channels of the patch merging at
            the end of the stage (``downsample``).
        mask_window_padding (bool): Whether patch window attention ignores
            tokens outside the image (batch padding and the padding that
            aligns the map to the window size).
        drop_path_rates (Sequence[float]): Stochastic depth per block.
        mlp_ratio (float): FFN hidden channels / ``embed_dims``.
        qkv_bias (bool): Whether qkv projections have a bias.
        drop_rate (float): Dropout rate.
        attn_drop_rate (float): Attention dropout rate.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(
        self,
        embed_dims: int,
        depth: int,
        num_heads: int,
        window_size: int,
        det_pos_dims: int,
        cross_attn: bool,
        downsample_channels: int,
        mask_window_padding: bool,
        drop_path_rates: Sequence[float],
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.cross_attn = cross_attn
        self.mask_window_padding = mask_window_padding
        self.blocks = ModuleList(
            [
                SwinRAMBlock(
                    embed_dims,
                    num_heads,
                    window_size,
                    shift_size=0 if i % 2 == 0 else self.shift_size,
                    det_pos_dims=det_pos_dims,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=drop_path_rates[i],
                )
                for i in range(depth)
            ]
        )
        if cross_attn:
            self.cross_pos_embed = SinePositionalEncoding(num_feats=embed_dims // 2, normalize=True)
        self.downsample = PatchDetMerging(embed_dims, downsample_channels)

    def _window_masks(
        self,
        padding_mask: Optional[Tensor],
        hw_shape: HWShape,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tuple[Optional[Tensor], Tensor]:
        """Scores added to the regular and to the shifted windows' attention,
        broadcastable to (B, nW, heads, L, L): :data:`BLOCKED` between shift
        regions, and on padded keys when ``mask_window_padding``."""
        H, W = hw_shape
        Hp = H + (-H) % self.window_size
        Wp = W + (-W) % self.window_size
        shift_blocked = shift_region_mask(
            Hp, Wp, self.window_size, self.shift_size, device
        ).unsqueeze(1)  # (nW, 1, L, L)
        if not self.mask_window_padding:
            return None, additive(shift_blocked, dtype)
        if padding_mask is None:
            padding_mask = torch.zeros((1, H, W), dtype=torch.bool, device=device)
        # The tokens that align the map to the window size are padding too.
        padded = F.pad(padding_mask, (0, Wp - W, 0, Hp - H), value=True)
        shifted = torch.roll(padded, (-self.shift_size, -self.shift_size), dims=(1, 2))
        regular_keys, shifted_keys = [
            to_windows(keys.unsqueeze(-1), self.window_size).view(
                keys.shape[0], -1, 1, 1, self.window_size**2
            )
            for keys in (padded, shifted)
        ]
        return additive(regular_keys, dtype), additive(shifted_keys | shift_blocked, dtype)

    def forward(
        self,
        patch: Tensor,
        det: Tensor,
        hw_shape: HWShape,
        det_pos: Tensor,
        padding_mask: Optional[Tensor],
    ) -> Tuple[Tensor, Tensor]:
        """Forward the blocks (the ``downsample`` is called by the body).

        Args:
            patch (Tensor): Patch tokens of shape (B, H*W, C).
            det (Tensor): [DET] tokens of shape (B, N, C).
            hw_shape (tuple[int, int]): (H, W) of the patch token map.
            det_pos (Tensor): [DET] positional embedding (1, N, P).
            padding_mask (Tensor, optional): This stage's token mask (B, H,
                W), ``True`` on padding (:mod:`.padding`); ``None`` when
                nothing is padded.

        Returns:
            tuple[Tensor, Tensor]: Patch tokens (B, H*W, C) and [DET] tokens
            (B, N, C).
        """
        B = patch.shape[0]
        regular_mask, shifted_mask = self._window_masks(
            padding_mask, hw_shape, patch.dtype, patch.device
        )
        cross_pos = cross_mask = None
        if self.cross_attn:
            pos_mask = padding_mask
            if pos_mask is None:
                pos_mask = torch.zeros((B, *hw_shape), dtype=torch.bool, device=patch.device)
            cross_pos = self.cross_pos_embed(pos_mask).flatten(2).transpose(1, 2).to(patch.dtype)
            if padding_mask is not None:
                keys = F.pad(padding_mask.flatten(1), (0, det.shape[1]), value=False)
                cross_mask = additive(keys[:, None, None, :], patch.dtype)
        for block in self.blocks:
            patch, det = block(
                patch,
                det,
                hw_shape,
                det_pos,
                window_mask=shifted_mask if block.shift_size else regular_mask,
                cross_pos=cross_pos,
                cross_mask=cross_mask,
            )
        return patch, det


@MODELS.register_module()
class SwinRAM(BaseModule):
    """Swin Transformer body with the Reconfigured Attention Module (ViDT).

    ``num_det_tokens`` learnable [DET] tokens (``embed_dims`` channels) and a
    learnable [DET] positional embedding (``det_pos_dims`` channels, projected
    to each block's width) go through all stages with the patch tokens. Patch
    merging widens the [DET] tokens together with the patch tokens. The
    stages listed in ``cross_attn_stages`` let the [DET] tokens attend to all
    patch tokens (padding masked).

    Outputs four patch levels: the outputs of stages 2, 3 and 4 and the
    patch merging of stage 4 (strides 8, 16, 32, 64; channels
    ``2C, 4C, 8C, extra_level_channels``), plus the [DET] tokens after stage
    4 (``8C`` channels) and the [DET] positional embedding.

    Args:
        arch (str | dict): ``'nano'``, ``'tiny'``, ``'small'``, ``'base'``,
            or a dict with ``embed_dims``, ``depths``, ``num_heads`` and
            optionally ``drop_path_rate``. Defaults to ``'tiny'``.
        num_det_tokens (int): Number of [DET] tokens. Defaults to 100.
        cross_attn_stages (Sequence[int]): 0-based stages with [DET] x
            [PATCH] cross-attention. Defaults to ``(3,)`` (the last stage).
        det_pos_dims (int): Channels of the [DET] positional embedding.
            Defaults to 256.
        extra_level_channels (int): Channels of the merged stage-4 level.
            Defaults to 256.
        window_size (int): Window side. Defaults to 7.
        mlp_ratio (float): FFN ratio. Defaults to 4.
        qkv_bias (bool): Whether qkv projections have a bias. Defaults to
            True.
        drop_rate (float): Dropout rate. Defaults to 0.
        attn_drop_rate (float): Attention dropout rate. Defaults to 0.
        drop_path_rate (float, optional): Maximum stochastic depth (linear in
            depth). ``None`` takes the variant's value.
        padding_masks (str): ``'official'`` (default): the official ViDT's
            padding masks (nearest-neighbour token masks at the
            cross-attention stages; window attention sees padding), which
            converted official checkpoints need; ``'batch_invariant'``: window
            attention ignores padded tokens and token masks cover only fully
            padded tokens, so an image's outputs do not depend on its batch
            (:mod:`.padding`).
        init_cfg (dict, optional): Initialization config, e.g. a
            ``Pretrained`` checkpoint in this module's key layout.
    """

    arch_zoo = {
        'nano': dict(
            embed_dims=48, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.0
        ),
        'tiny': dict(
            embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2
        ),
        'small': dict(
            embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.3
        ),
        'base': dict(
            embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.3
        ),
    }
    patch_size = 4

    def __init__(
        self,
        arch: Union[str, dict] = 'tiny',
        num_det_tokens: int = 100,
        cross_attn_stages: Sequence[int] = (3,),
        det_pos_dims: int = 256,
        extra_level_channels: int = 256,
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: Optional[float] = None,
        padding_masks: str = 'official',
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._resolve_arch(arch)
        embed_dims, depths = arch['embed_dims'], tuple(arch['depths'])
        num_stages = len(depths)
        if num_det_tokens < 1:
            raise ValueError(f'num_det_tokens must be >= 1, got {num_det_tokens}')
        cross_attn_stages = tuple(cross_attn_stages)
        bad_stages = [s for s in cross_attn_stages if not 0 <= s < num_stages]
        if bad_stages:
            raise ValueError(
                f'cross_attn_stages {bad_stages} out of range: stages are 0..{num_stages - 1}'
            )
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.0)

        self.num_det_tokens = num_det_tokens
        self.cross_attn_stages = cross_attn_stages
        self.padding_masks = check_mode(padding_masks)
        self.det_pos_dims = det_pos_dims
        stage_channels = [embed_dims * 2**i for i in range(num_stages)]
        # Channels and strides of the output levels (stages 2.. and the
        # merged last stage) and channels of the output [DET] tokens.
        self.out_channels = stage_channels[1:] + [extra_level_channels]
        self.out_strides = [self.patch_size * 2**i for i in range(1, num_stages + 1)]
        self.det_channels = stage_channels[-1]

        self.patch_embed = PatchEmbed(
            in_channels=3,
            embed_dims=embed_dims,
            kernel_size=self.patch_size,
            stride=self.patch_size,
            padding='corner',
            norm_cfg=dict(type='LN'),
        )
        self.det_tokens = nn.Parameter(torch.zeros(1, num_det_tokens, embed_dims))
        self.det_pos_embed = nn.Parameter(torch.zeros(1, num_det_tokens, det_pos_dims))

        # Stochastic depth grows linearly from 0 to drop_path_rate.
        num_blocks = sum(depths)
        dpr = [drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)]
        self.stages = ModuleList()
        for i in range(num_stages):
            self.stages.append(
                SwinRAMStage(
                    embed_dims=stage_channels[i],
                    depth=depths[i],
                    num_heads=arch['num_heads'][i],
                    window_size=window_size,
                    det_pos_dims=det_pos_dims,
                    cross_attn=i in cross_attn_stages,
                    downsample_channels=stage_channels[i + 1]
                    if i + 1 < num_stages
                    else extra_level_channels,
                    mask_window_padding=padding_masks == 'batch_invariant',
                    drop_path_rates=dpr[sum(depths[:i]) : sum(depths[: i + 1])],
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                )
            )

    @classmethod
    def _resolve_arch(cls, arch: Union[str, dict]) -> dict:
        """Variant name or explicit dict -> validated arch dict."""
        if isinstance(arch, str):
            if arch not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown arch {arch!r}; choose from {sorted(cls.arch_zoo)} or pass a dict'
                )
            return dict(cls.arch_zoo[arch])
        required = {'embed_dims', 'depths', 'num_heads'}
        if not isinstance(arch, dict) or not required <= set(arch):
            raise ValueError(
                f'A custom arch must be a dict with keys {sorted(required)}, got {arch!r}'
            )
        if len(arch['depths']) != len(arch['num_heads']):
            raise ValueError(f'arch depths and num_heads must have the same length, got {arch!r}')
        return dict(arch)

    def init_weights(self) -> None:
        """Truncated-normal linear weights and [DET] embeddings, as Swin.

        Runs before :meth:`BaseModule.init_weights`, which loads a
        ``Pretrained`` ``init_cfg`` last, so pretrained weights win.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        trunc_normal_(self.det_tokens, std=0.02)
        trunc_normal_(self.det_pos_embed, std=0.02)
        super().init_weights()

    def forward(
        self, inputs: Tensor, padding_mask: Optional[Tensor] = None
    ) -> Tuple[Tuple[Tensor, ...], Tensor, Tensor]:
        """Forward the body.

        Args:
            inputs (Tensor): Images of shape (B, 3, H, W).
            padding_mask (Tensor, optional): Pixel mask of shape (B, H, W),
                ``True`` on padding; ``None`` when nothing is padded.

        Returns:
            tuple:

            - levels (tuple[Tensor]): 4 patch maps (B, C_l, H_l, W_l) with
              strides 8, 16, 32, 64 and channels :attr:`out_channels`.
            - det_tokens (Tensor): [DET] tokens after the last stage,
              (B, N, :attr:`det_channels`).
            - det_pos (Tensor): [DET] positional embedding (1, N,
              ``det_pos_dims``).
        """
        B = inputs.shape[0]
        patch, hw_shape = self.patch_embed(inputs)
        det = self.det_tokens.expand(B, -1, -1)
        stage_masks = self.stage_masks(padding_mask, hw_shape)
        levels: List[Tensor] = []
        for i, stage in enumerate(self.stages):
            patch, det = stage(patch, det, hw_shape, self.det_pos_embed, stage_masks[i])
            if i > 0:
                levels.append(self._to_map(patch, hw_shape))
            is_last = i == len(self.stages) - 1
            if is_last:
                det_out = det
            if self.padding_masks == 'batch_invariant' and stage_masks[i] is not None:
                # Padded tokens enter the 2x2 merging as zeros, as the zero
                # padding of an odd-sized unpadded map does.
                patch = patch.masked_fill(stage_masks[i].flatten(1)[..., None], 0)
            # The [DET] tokens leave the body after the last stage, so its
            # merging (the extra level) only concerns the patch tokens.
            patch, hw_shape, det = stage.downsample(patch, hw_shape, None if is_last else det)
        levels.append(self._to_map(patch, hw_shape))
        return tuple(levels), det_out, self.det_pos_embed

    def stage_masks(
        self, padding_mask: Optional[Tensor], patch_grid: HWShape
    ) -> List[Optional[Tensor]]:
        """Every stage's token mask (:func:`.padding.body_cross_attention_masks`),
        computed once per forward from the pixel mask (B, H, W) and the patch
        embedding's grid."""
        grids = [tuple(patch_grid)]
        for _ in self.stages[1:]:
            grids.append(((grids[-1][0] + 1) // 2, (grids[-1][1] + 1) // 2))
        return body_cross_attention_masks(
            padding_mask, self.padding_masks, tuple(patch_grid), grids, self.cross_attn_stages
        )

    @staticmethod
    def _to_map(tokens: Tensor, hw_shape: HWShape) -> Tensor:
        """(B, H*W, C) -> (B, C, H, W)."""
        B, _, C = tokens.shape
        return tokens.transpose(1, 2).reshape(B, C, *hw_shape)
