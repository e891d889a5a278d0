"""Normalisation layers computed in float32 (the official blocks' convention)."""

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers.registry import register_norm_layer

__all__ = ["LayerNorm32", "MultiHeadRMSNorm"]


@register_norm_layer("layernorm32")
class LayerNorm32(nn.LayerNorm):
    """``nn.LayerNorm`` evaluated in float32 and cast back to the input dtype."""

    def forward(self, x: Float[Tensor, "*batch c"]) -> Float[Tensor, "*batch c"]:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class MultiHeadRMSNorm(nn.Module):
    """Per-head RMS norm for queries/keys: ``normalize(x, dim=-1) * gamma * sqrt(d)`` in float32.

    ``gamma [H, d]`` (ones at init), the official ``q_rms_norm.gamma`` / ``k_rms_norm.gamma``.
    """

    def __init__(self, head_dim: int, num_heads: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.scale = head_dim**0.5
        self.gamma = nn.Parameter(torch.ones(num_heads, head_dim, device=device, dtype=dtype))

    def forward(self, x: Float[Tensor, "*batch h d"]) -> Float[Tensor, "*batch h d"]:
        return (F.normalize(x.float(), dim=-1) * self.gamma.float() * self.scale).to(x.dtype)
