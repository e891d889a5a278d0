"""Attention backend implementations and their registry."""

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int32
from torch import Tensor

from ss4d.ops._optional import AnyDevice, CudaPackage, require
from ss4d.ops.registry import BackendRegistry

__all__ = [
    "AttentionBackend",
    "FlashAttnBackend",
    "NaiveBackend",
    "SdpaBackend",
    "XformersBackend",
    "attention_backends",
]


class AttentionBackend(ABC):
    """Softmax attention ``softmax(q k^T * scale) v``; no causal mask, no dropout."""

    name: str = ""
    install_hint: str = ""

    @abstractmethod
    def is_available(self, device: torch.device) -> bool: ...

    def unavailable_reason(self, device: torch.device) -> str:
        return "" if self.is_available(device) else f"{self.name} is not available on {device}."

    def accepts(self, q: Tensor) -> bool:
        """Whether this backend can take ``q``'s dtype (checked before dispatch)."""
        return True

    @abstractmethod
    def dense(
        self, q: Float[Tensor, "b h lq d"], k: Float[Tensor, "b h lk d"], v: Float[Tensor, "b h lk dv"], scale: float
    ) -> Float[Tensor, "b h lq dv"]: ...

    @abstractmethod
    def varlen(
        self,
        q: Float[Tensor, "nq h d"],
        k: Float[Tensor, "nk h d"],
        v: Float[Tensor, "nk h dv"],
        cu_q: Int32[Tensor, " s1"],
        cu_k: Int32[Tensor, " s1"],
        scale: float,
    ) -> Float[Tensor, "nq h dv"]: ...

    def __repr__(self) -> str:
        return f"<attention backend {self.name!r}>"


class NaiveBackend(AnyDevice, AttentionBackend):
    """Explicit softmax in float32, one sequence at a time for varlen: the obviously-correct reference."""

    name = "naive"

    def dense(self, q, k, v, scale):
        compute = torch.promote_types(q.dtype, torch.float32)
        logits = (q.to(compute) @ k.to(compute).transpose(-1, -2)) * scale
        return (logits.softmax(dim=-1) @ v.to(compute)).to(q.dtype)

    def varlen(self, q, k, v, cu_q, cu_k, scale):
        out = q.new_zeros(q.shape[0], q.shape[1], v.shape[2])
        bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
        for i in range(len(bounds_q) - 1):
            q0, q1, k0, k1 = bounds_q[i], bounds_q[i + 1], bounds_k[i], bounds_k[i + 1]
            if q1 == q0 or k1 == k0:
                continue
            qi, ki, vi = (t.transpose(0, 1)[None] for t in (q[q0:q1], k[k0:k1], v[k0:k1]))
            out[q0:q1] = self.dense(qi, ki, vi, scale)[0].transpose(0, 1)
        return out


def _length_groups(len_q: list[int], len_k: list[int], slack: float = 1.25) -> list[list[int]]:
    """Group sequence ids so that padding each group to its longest sequence wastes at most ~``slack``.

    Sequences of equal lengths always share a group (no padding, no mask).
    """
    order = sorted((i for i in range(len(len_q)) if len_q[i] and len_k[i]), key=lambda i: (len_k[i], len_q[i]))
    groups: list[list[int]] = []
    for i in order:
        if groups:
            g = groups[-1]
            lo_k, lo_q = len_k[g[0]], len_q[g[0]]
            if len_k[i] <= max(lo_k * slack, lo_k + 8) and len_q[i] <= max(lo_q * slack, lo_q + 8):
                g.append(i)
                continue
        groups.append([i])
    return groups


def _pad_index(starts: Tensor, lengths: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Row indices ``[g, width]`` of padded sequences (0 where padding) and the validity mask."""
    pos = torch.arange(width, device=starts.device)
    valid = pos[None, :] < lengths[:, None]
    return torch.where(valid, starts[:, None] + pos[None, :], 0), valid


class SdpaBackend(AnyDevice, AttentionBackend):
    """``torch.nn.functional.scaled_dot_product_attention`` on any device.

    Varlen sequences are batched by length: equal-length sequences (e.g. all temporal windows of a dense
    clip) run as one batch without a mask; others are padded within groups of similar length and masked
    on the key side.
    """

    name = "sdpa"

    def dense(self, q, k, v, scale):
        return F.scaled_dot_product_attention(q, k, v, scale=scale)

    def varlen(self, q, k, v, cu_q, cu_k, scale):
        out = q.new_zeros(q.shape[0], q.shape[1], v.shape[2])
        cu_q64, cu_k64 = cu_q.long(), cu_k.long()
        lq_t, lk_t = cu_q64.diff(), cu_k64.diff()
        len_q, len_k = lq_t.tolist(), lk_t.tolist()
        for group in _length_groups(len_q, len_k):
            ids = torch.tensor(group, device=q.device)
            wq, wk = max(len_q[i] for i in group), max(len_k[i] for i in group)
            iq, vq = _pad_index(cu_q64[ids], lq_t[ids], wq)
            ik, vk = _pad_index(cu_k64[ids], lk_t[ids], wk)
            qb, kb, vb = (t[idx].transpose(1, 2) for t, idx in ((q, iq), (k, ik), (v, ik)))  # [g, h, l, d]
            uniform = all(len_k[i] == wk for i in group)
            mask = None if uniform else vk[:, None, None, :]
            ob = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, scale=scale).transpose(1, 2)
            out[iq[vq]] = ob[vq]
        return out


class FlashAttnBackend(CudaPackage, AttentionBackend):
    """flash-attn 2 (CUDA, fp16/bf16): ``flash_attn_func`` and ``flash_attn_varlen_func``."""

    name = "flash_attn"
    module = "flash_attn"
    install_hint = "Install it on a CUDA machine with `pip install 'ss4d[flash]'` (builds flash-attn)."

    def accepts(self, q: Tensor) -> bool:
        return q.dtype in (torch.float16, torch.bfloat16)

    def dense(self, q, k, v, scale):
        fa = require("flash_attn", hint=self.install_hint)
        return fa.flash_attn_func(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), softmax_scale=scale
        ).transpose(1, 2)

    def varlen(self, q, k, v, cu_q, cu_k, scale):
        fa = require("flash_attn", hint=self.install_hint)
        max_q, max_k = int(cu_q.diff().max()), int(cu_k.diff().max())
        return fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, max_q, max_k, softmax_scale=scale)


class XformersBackend(CudaPackage, AttentionBackend):
    """xformers memory-efficient attention with a block-diagonal mask for varlen sequences."""

    name = "xformers"
    module = "xformers.ops"
    install_hint = "Install it with `pip install xformers` (matching your torch build)."

    def dense(self, q, k, v, scale):
        xops = require("xformers.ops", hint=self.install_hint)
        out = xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale)
        return out.transpose(1, 2)

    def varlen(self, q, k, v, cu_q, cu_k, scale):
        xops = require("xformers.ops", hint=self.install_hint)
        mask = xops.fmha.BlockDiagonalMask.from_seqlens(cu_q.diff().tolist(), cu_k.diff().tolist())
        return xops.memory_efficient_attention(q[None], k[None], v[None], attn_bias=mask, scale=scale)[0]


attention_backends: BackendRegistry[AttentionBackend] = BackendRegistry("attention", fallback="sdpa")
# "auto": flash_attn -> xformers -> sdpa on CUDA, sdpa elsewhere; naive (the reference) only by name
attention_backends.register(NaiveBackend())
attention_backends.register(SdpaBackend(), priority={"cpu": 10, "cuda": 10, "mps": 10})
attention_backends.register(FlashAttnBackend(), priority={"cuda": 30})
attention_backends.register(XformersBackend(), priority={"cuda": 20})
