"""Registries of the blocks' swappable sub-blocks: temporal layers, attention layers, MLPs and norms.

A block takes the *class* (or any factory) it builds, as timm's ``attn_layer=`` / ``mlp_layer=``::

    ModulatedTransformerCrossBlock(512, 1024, num_heads=8, temporal_layer=MyTemporalLayer)

A model config names a *registered* class instead (``StructureFlow4DConfig(temporal_layer="mine")``), so
the swap is a config value that round-trips through ``save_pretrained`` / ``from_pretrained``. Only
registered names resolve (an allowlist: never an import path). Register with the decorator::

    @register_temporal_layer("mine")
    class MyTemporalLayer(nn.Module): ...

The call signatures each kind is built with (keyword arguments, ``device`` / ``dtype`` always passed):

* temporal layer: ``(channels, *, num_heads, window, shift, rope_base, use_rope, qk_rms_norm, attn_backend,
  mode, [window_xyz])``; ``forward(x)`` takes dense ``[B, T, M, C]`` tokens or a ``SparseTensor`` and returns
  the attention *update* of the same type. ``mode`` is ``"expand"`` (it is the block's self-attention) or
  ``"insert"`` (an extra layer; define ``zero_output_()`` so a model's init can zero it).
* attention layer: ``(channels, num_heads, *, kind, ctx_channels, qk_rms_norm, attn_backend)``.
* MLP: ``(channels, *, mlp_ratio)``.
* norm: ``(channels, *, elementwise_affine, eps)``.

See docs/design.md, "How to add a block".
"""

from collections.abc import Callable
from typing import Any

from torch import nn

from ss4d.ops.registry import Registry

__all__ = [
    "BlockFactory",
    "attention_layers",
    "create_attention_layer",
    "create_mlp_layer",
    "create_norm_layer",
    "create_temporal_layer",
    "mlp_layers",
    "norm_layers",
    "register_attention_layer",
    "register_mlp_layer",
    "register_norm_layer",
    "register_temporal_layer",
    "temporal_layers",
    "zero_output_",
]

BlockFactory = Callable[..., nn.Module]
"""A class (or function) that builds a sub-block from the keyword arguments listed above."""

temporal_layers: Registry[BlockFactory] = Registry("temporal layer")
attention_layers: Registry[BlockFactory] = Registry("attention layer")
mlp_layers: Registry[BlockFactory] = Registry("MLP layer")
norm_layers: Registry[BlockFactory] = Registry("norm layer")


def register_temporal_layer(name: str) -> Callable[[BlockFactory], BlockFactory]:
    """Decorator: make a temporal-layer class nameable in model configs (``temporal_layer=name``)."""
    return temporal_layers.register(name)


def register_attention_layer(name: str) -> Callable[[BlockFactory], BlockFactory]:
    """Decorator: make an attention class nameable in model configs (``attn_layer=name``)."""
    return attention_layers.register(name)


def register_mlp_layer(name: str) -> Callable[[BlockFactory], BlockFactory]:
    """Decorator: make an MLP class nameable in model configs (``mlp_layer=name``)."""
    return mlp_layers.register(name)


def register_norm_layer(name: str) -> Callable[[BlockFactory], BlockFactory]:
    """Decorator: make a norm class nameable in model configs (``norm_layer=name``)."""
    return norm_layers.register(name)


def create_temporal_layer(name: str, *args: Any, **kwargs: Any) -> nn.Module:
    return temporal_layers.get(name)(*args, **kwargs)


def create_attention_layer(name: str, *args: Any, **kwargs: Any) -> nn.Module:
    return attention_layers.get(name)(*args, **kwargs)


def create_mlp_layer(name: str, *args: Any, **kwargs: Any) -> nn.Module:
    return mlp_layers.get(name)(*args, **kwargs)


def create_norm_layer(name: str, *args: Any, **kwargs: Any) -> nn.Module:
    return norm_layers.get(name)(*args, **kwargs)


def zero_output_(module: nn.Module) -> bool:
    """Zero-initialise ``module``'s output (a residual branch that starts as the identity) through its
    ``zero_output_()`` method; returns False (and changes nothing) when it has none."""
    method = getattr(module, "zero_output_", None)
    if method is None:
        return False
    method()
    return True
