"""The plain pre-norm transformer of :class:`~ss4d.models.TinyImageEncoder` and of its pre-training probe
(:mod:`ss4d.training.probe`): the layer, and the config fields of a stack of them.

A layer is ``x + attention(norm1(x)[, context])`` then ``x + mlp(norm2(x))`` (float32 LayerNorms with eps 1e-6,
multi-head attention, the 4x GELU MLP): self-attention in the encoder, cross-attention from the probe's queries
to the encoder's tokens.
"""

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import Tensor, nn

from ss4d.layers import FeedForward, LayerNorm32, MultiHeadAttention
from ss4d.models.base import ModelConfig

__all__ = ["PreNormStackConfig", "PreNormTransformerLayer"]


@dataclass(frozen=True, kw_only=True)
class PreNormStackConfig(ModelConfig):
    """``num_layers`` :class:`PreNormTransformerLayer` of width ``channels`` with ``num_heads`` heads."""

    channels: int = 128
    num_layers: int = 2
    num_heads: int = 4

    def validate(self) -> None:
        super().validate()
        self.check_divisible("channels", "num_heads")


class PreNormTransformerLayer(nn.Module):
    """One pre-norm layer (see the module docstring). The attention is registered as ``attn`` for
    ``kind="self"`` and as ``cross`` for ``kind="cross"``: the state-dict keys of the encoder's and the probe's
    checkpoints."""

    ATTENTION_NAMES: ClassVar[dict[str, str]] = {"self": "attn", "cross": "cross"}

    def __init__(self, channels: int, num_heads: int, *, kind: Literal["self", "cross"] = "self") -> None:
        super().__init__()
        if kind not in self.ATTENTION_NAMES:
            raise ValueError(f"`kind` must be 'self' or 'cross', got {kind!r}")
        self.attention_name = self.ATTENTION_NAMES[kind]
        self.norm1 = LayerNorm32(channels, eps=1e-6)
        self.add_module(self.attention_name, MultiHeadAttention(channels, num_heads, kind=kind))
        self.norm2 = LayerNorm32(channels, eps=1e-6)
        self.mlp = FeedForward(channels)

    @property
    def attention(self) -> MultiHeadAttention:
        return self.get_submodule(self.attention_name)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``x [B, L, C]``; ``context [B, Lc, C]``: the tokens a cross-attention layer attends to."""
        x = x + self.attention(self.norm1(x), context)
        return x + self.mlp(self.norm2(x))
