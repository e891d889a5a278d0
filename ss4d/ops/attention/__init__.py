"""Scaled-dot-product attention kernels behind one registry (floor 1).

* :func:`attention`: dense ``q [B, H, Lq, D]``, ``k, v [B, H, Lk, D]``.
* :func:`varlen_attention`: packed variable-length sequences ``q [Nq, H, D]``, ``k, v [Nk, H, D]`` with
  ``cu_seqlens`` (sequence ``i`` is rows ``cu[i]:cu[i+1]``); self or cross (query and key lengths differ).

Backends: ``naive`` (explicit softmax, the reference), ``sdpa`` (PyTorch, any device; varlen by
length buckets, padding + key mask where lengths differ), ``flash_attn`` (CUDA, fp16/bf16, varlen),
``xformers`` (block-diagonal masks). ``"auto"``: flash_attn -> xformers -> sdpa on CUDA, sdpa elsewhere;
an auto-chosen backend that cannot take the dtype (flash-attn and fp32) falls back to sdpa.
"""

from ss4d.ops.attention.backends import (
    AttentionBackend,
    FlashAttnBackend,
    NaiveBackend,
    SdpaBackend,
    XformersBackend,
    attention_backends,
)
from ss4d.ops.attention.functional import attention, seqlens_to_cu, varlen_attention

__all__ = [
    "AttentionBackend",
    "FlashAttnBackend",
    "NaiveBackend",
    "SdpaBackend",
    "XformersBackend",
    "attention",
    "attention_backends",
    "seqlens_to_cu",
    "varlen_attention",
]
