"""Multi-head attention modules for dense tokens and sparse voxels, with the official parameter names.

Names match TRELLIS / SS4D so their weights load 1:1: self-attention ``to_qkv`` (fused, output channel
``which * C + head * d + j``), cross-attention ``to_q`` + ``to_kv``, ``to_out``, and optional
``q_rms_norm.gamma`` / ``k_rms_norm.gamma`` ``[H, d]``.
"""

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers.norm import MultiHeadRMSNorm
from ss4d.layers.positional import RotaryEmbedding, apply_rotary
from ss4d.layers.registry import register_attention_layer
from ss4d.layers.windows import TokenPartition, sparse_entry_partition
from ss4d.ops.attention import attention, seqlens_to_cu, varlen_attention
from ss4d.ops.sparse import SparseTensor

__all__ = ["AttentionCore", "MultiHeadAttention", "SparseMultiHeadAttention"]


class AttentionCore(nn.Module):
    """Projections, q/k norms and RoPE shared by every attention module in ss4d.

    Args:
        channels: model width C (= heads x head dim).
        num_heads: H; ``C % H == 0``.
        kind: ``"self"`` (fused ``to_qkv``) or ``"cross"`` (``to_q`` from C, ``to_kv`` from ``ctx_channels``).
        ctx_channels: context width for cross-attention (default C).
        qkv_bias: bias in the input projections.
        qk_rms_norm: per-head RMS norm of q and k (after RoPE, as the official code).
        rope_base: base of the 1D RoPE applied by :meth:`project_self` when positions are given.
        attn_backend: ``ss4d.ops.attention`` backend name or ``"auto"``.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int,
        *,
        kind: Literal["self", "cross"] = "self",
        ctx_channels: int | None = None,
        qkv_bias: bool = True,
        qk_rms_norm: bool = False,
        rope_base: float = 10000.0,
        attn_backend: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"`channels` ({channels}) must be divisible by `num_heads` ({num_heads})")
        dd = {"device": device, "dtype": dtype}
        self.channels, self.num_heads, self.head_dim = channels, num_heads, channels // num_heads
        self.kind, self.attn_backend = kind, attn_backend
        if kind == "self":
            self.to_qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias, **dd)
        elif kind == "cross":
            self.to_q = nn.Linear(channels, channels, bias=qkv_bias, **dd)
            self.to_kv = nn.Linear(ctx_channels or channels, 2 * channels, bias=qkv_bias, **dd)
        else:
            raise ValueError(f"`kind` must be 'self' or 'cross', got {kind!r}")
        self.qk_rms_norm = qk_rms_norm
        if qk_rms_norm:
            self.q_rms_norm = MultiHeadRMSNorm(self.head_dim, num_heads, **dd)
            self.k_rms_norm = MultiHeadRMSNorm(self.head_dim, num_heads, **dd)
        self.rope = RotaryEmbedding(self.head_dim, 1, base=rope_base)
        self.to_out = nn.Linear(channels, channels, **dd)

    def _heads(self, x: Tensor, n: int) -> Tensor:
        return x.unflatten(-1, (n, self.num_heads, self.head_dim))

    def _norm_qk(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        if self.qk_rms_norm:
            return self.q_rms_norm(q), self.k_rms_norm(k)
        return q, k

    def project_self(
        self, x: Float[Tensor, "*rows c"], positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``q, k, v [..., H, d]`` from ``x [..., C]``; RoPE by ``positions`` (broadcast to the rows), then RMS norm."""
        q, k, v = self._heads(self.to_qkv(x), 3).unbind(dim=-3)
        if positions is not None:
            angles = self.rope.angles(positions.unsqueeze(-1))
            q = apply_rotary(q, angles)
            k = apply_rotary(k, angles)
        q, k = self._norm_qk(q, k)
        return q, k, v

    def project_cross(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q = self._heads(self.to_q(x), 1).squeeze(-3)
        k, v = self._heads(self.to_kv(context), 2).unbind(dim=-3)
        q, k = self._norm_qk(q, k)
        return q, k, v

    def attend_packed(
        self, q: Float[Tensor, "n h d"], k: Tensor, v: Tensor, partition: TokenPartition, cu_k: Tensor | None = None
    ) -> Float[Tensor, "n c"]:
        """Varlen attention over packed rows (self: one partition; cross: ``cu_k`` for the keys)."""
        if partition.perm is not None:
            if cu_k is not None:
                raise ValueError("a permuted partition is for self-attention; cross-attention needs perm=None")
            perm = partition.perm
            out = varlen_attention(q[perm], k[perm], v[perm], partition.cu_seqlens, backend=self.attn_backend)
            out = torch.empty_like(out).index_copy_(0, perm, out)
        else:
            out = varlen_attention(q, k, v, partition.cu_seqlens, cu_k, backend=self.attn_backend)
        return self.to_out(out.flatten(-2))


@register_attention_layer("multihead")
class MultiHeadAttention(AttentionCore):
    """Dense multi-head attention on ``[B, L, C]`` tokens: self (optionally 1D RoPE) or cross to ``[B, Lc, Cc]``."""

    def forward(
        self,
        x: Float[Tensor, "b l c"],
        context: Float[Tensor, "b lc cc"] | None = None,
        positions: Float[Tensor, "b l"] | Float[Tensor, " l"] | None = None,
    ) -> Float[Tensor, "b l c"]:
        if self.kind == "cross":
            if context is None:
                raise ValueError("cross-attention needs `context` [B, Lc, C_ctx]")
            q, k, v = self.project_cross(x, context)
        else:
            q, k, v = self.project_self(x, positions)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), backend=self.attn_backend)
        return self.to_out(out.transpose(1, 2).flatten(-2))


@register_attention_layer("sparse_multihead")
class SparseMultiHeadAttention(AttentionCore):
    """Attention on sparse voxels, per batch entry (per frame): self among the entry's voxels, or cross to
    the entry's context tokens ``[B*T, Lc, Cc]``. For attention across frames use :class:`TemporalLayer`.
    """

    def forward(self, x: SparseTensor, context: Float[Tensor, "e lc cc"] | None = None) -> SparseTensor:
        if self.kind == "cross":
            if context is None or context.ndim != 3 or context.shape[0] != x.layout.num_entries:
                got = None if context is None else tuple(context.shape)
                raise ValueError(f"`context` must be [{x.layout.num_entries}, Lc, C_ctx] (one per b*T + t), got {got}")
            q, k, v = self.project_cross(x.feats, context.flatten(0, 1))
            E, Lc = context.shape[:2]
            cu_k = seqlens_to_cu([Lc] * E, x.device)
            return x.replace(self.attend_packed(q, k, v, sparse_entry_partition(x), cu_k))
        q, k, v = self.project_self(x.feats)
        return x.replace(self.attend_packed(q, k, v, sparse_entry_partition(x)))
