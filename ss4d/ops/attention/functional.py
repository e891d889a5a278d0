"""Attention entry points with input validation and backend dispatch."""

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ss4d.ops.attention.backends import AttentionBackend, attention_backends

__all__ = ["attention", "seqlens_to_cu", "varlen_attention"]


def seqlens_to_cu(lengths: Int[Tensor, " s"] | list[int], device: torch.device | str | None = None) -> Tensor:
    """Sequence lengths -> int32 cumulative offsets ``[0, l0, l0 + l1, ...]`` (length S + 1)."""
    lengths = torch.as_tensor(lengths, device=device).long()
    return torch.cat([lengths.new_zeros(1), lengths.cumsum(0)]).to(torch.int32)


def _resolve(backend: str, q: Tensor) -> AttentionBackend:
    impl = attention_backends.resolve(backend, q.device)
    if not impl.accepts(q):
        if backend in ("auto", None):
            return attention_backends.resolve("sdpa", q.device)
        raise ValueError(f"attention backend {impl.name!r} does not take {q.dtype}; cast to fp16/bf16 or use 'sdpa'")
    return impl


def attention(
    q: Float[Tensor, "b h lq d"],
    k: Float[Tensor, "b h lk d"],
    v: Float[Tensor, "b h lk dv"],
    *,
    scale: float | None = None,
    backend: str = "auto",
) -> Float[Tensor, "b h lq dv"]:
    """``softmax(q k^T * scale) v`` for dense batches; ``scale`` defaults to ``1 / sqrt(d)``.

    Raises:
        ValueError: mismatched batch, heads, head dims or key/value lengths.
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must be [B, H, L, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3] or q.shape[3] != k.shape[3]:
        raise ValueError(f"incompatible q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _resolve(backend, q).dense(q, k, v, scale)


def varlen_attention(
    q: Float[Tensor, "nq h d"],
    k: Float[Tensor, "nk h d"],
    v: Float[Tensor, "nk h dv"],
    cu_seqlens_q: Int[Tensor, " s1"],
    cu_seqlens_k: Int[Tensor, " s1"] | None = None,
    *,
    scale: float | None = None,
    backend: str = "auto",
) -> Float[Tensor, "nq h dv"]:
    """Attention within each packed sequence: query rows ``cu_q[i]:cu_q[i+1]`` attend to key rows
    ``cu_k[i]:cu_k[i+1]`` (``cu_seqlens_k`` defaults to ``cu_seqlens_q``: self-attention).

    Raises:
        ValueError: shapes or offsets that do not describe the packed rows.
    """
    cu_k = cu_seqlens_q if cu_seqlens_k is None else cu_seqlens_k
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3 or q.shape[1:] != k.shape[1:] or k.shape[:2] != v.shape[:2]:
        raise ValueError(f"q, k, v must be [N, H, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if cu_seqlens_q.ndim != 1 or cu_k.shape != cu_seqlens_q.shape:
        raise ValueError("cu_seqlens_q and cu_seqlens_k must be 1D with one entry per sequence + 1")
    for name, cu, n in (("cu_seqlens_q", cu_seqlens_q, q.shape[0]), ("cu_seqlens_k", cu_k, k.shape[0])):
        if cu.dtype.is_floating_point or cu.dtype == torch.bool:
            raise ValueError(f"{name} must be an integer tensor, got {cu.dtype}")
        if cu.numel() == 0 or int(cu[0]) != 0 or int(cu[-1]) != n or bool((cu.diff() < 0).any()):
            raise ValueError(f"{name} must rise from 0 to {n} (the packed row count), got {cu.tolist()[:8]}...")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _resolve(backend, q).varlen(q, k, v, cu_seqlens_q.to(torch.int32), cu_k.to(torch.int32), scale)
