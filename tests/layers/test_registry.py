"""Registries of sub-blocks and their injection into blocks: a swapped block is a class or a config name."""

import pytest
import torch
from jaxtyping import TypeCheckError
from torch import nn

from ss4d.errors import UnknownBackendError
from ss4d.layers import (
    FeedForward,
    LayerNorm32,
    ModulatedSparseTransformerCrossBlock,
    ModulatedTransformerCrossBlock,
    MultiHeadAttention,
    SparseMultiHeadAttention,
    SparseTransformerBlock,
    TemporalLayer,
    attention_layers,
    create_temporal_layer,
    mlp_layers,
    norm_layers,
    temporal_layers,
)
from ss4d.models import SLatEncoder4DConfig, SLatFlow4DConfig, StructureFlow4DConfig
from ss4d.ops.modes import TemporalMode, check_choice
from ss4d.ops.registry import BackendRegistry, Registry

from ..ops.sparse.helpers import random_sparse

C, CC, H = 16, 12, 2


class FrameMeanMixer(nn.Module):
    """A temporal layer unlike TemporalLayer: each token gets a projection of its sample's frame mean."""

    def __init__(self, channels, *, mode, **_):
        super().__init__()
        self.mode = mode
        self.proj = nn.Linear(channels, channels)
        self.calls = 0

    def zero_output_(self):
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        self.calls += 1
        if isinstance(x, torch.Tensor):
            return self.proj(x.mean(dim=1, keepdim=True)).expand_as(x)
        return x.replace(self.proj(x.feats))


def test_registry_rules():
    reg: Registry[type] = Registry("widget")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and reg.names() == ["a"] and "a" in reg and reg.name_of(A) == "a"
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", int)
    with pytest.raises(ValueError, match=r"unknown widget 'b'; known: \['a'\]"):
        reg.get("b")
    with pytest.raises(ValueError, match="not a registered widget"):
        reg.name_of(int)
    assert reg.unregister("a") is A and reg.names() == []
    assert issubclass(UnknownBackendError, ValueError) and issubclass(BackendRegistry, Registry)


def test_the_defaults_are_registered():
    assert temporal_layers.get("temporal") is TemporalLayer
    assert attention_layers.get("multihead") is MultiHeadAttention
    assert attention_layers.get("sparse_multihead") is SparseMultiHeadAttention
    assert mlp_layers.get("feedforward") is FeedForward and norm_layers.get("layernorm32") is LayerNorm32
    layer = create_temporal_layer("temporal", C, num_heads=H, window=2)
    assert isinstance(layer, TemporalLayer) and layer.window == 2


def test_modes_are_checked_in_one_place_with_one_message():
    """check_choice gives the message; under the test suite's beartype hook the Literal annotations of block
    arguments and config fields reject the value first (TypeCheckError)."""
    assert check_choice("insert", TemporalMode, "temporal") == "insert"
    with pytest.raises(ValueError, match="`temporal` must be one of 'expand', 'insert', 'none'; got 'inserted'"):
        check_choice("inserted", TemporalMode, "temporal")
    with pytest.raises((ValueError, TypeCheckError)):
        ModulatedTransformerCrossBlock(C, CC, num_heads=H, temporal="inserted")
    with pytest.raises((ValueError, TypeCheckError)):
        SparseTransformerBlock(C, num_heads=H, temporal="insert")
    with pytest.raises((ValueError, TypeCheckError)):
        TemporalLayer(C, mode="none")
    for bad in (
        lambda: StructureFlow4DConfig(temporal="x"),
        lambda: SLatEncoder4DConfig(temporal="insert"),
        lambda: SLatFlow4DConfig(pooling="max"),
    ):
        with pytest.raises((ValueError, TypeCheckError)):
            bad()


@pytest.mark.parametrize("temporal", ["expand", "insert"])
def test_blocks_build_the_injected_classes(temporal):
    dense = ModulatedTransformerCrossBlock(C, CC, num_heads=H, temporal=temporal, temporal_layer=FrameMeanMixer)
    sparse = ModulatedSparseTransformerCrossBlock(
        C, CC, num_heads=H, temporal=temporal, temporal_layer=FrameMeanMixer, mlp_layer=FeedForward
    )
    layers = [block.self_attn if temporal == "expand" else block.temporal_attn for block in (dense, sparse)]
    assert all(isinstance(layer, FrameMeanMixer) and layer.mode == temporal for layer in layers)
    dense(torch.randn(2, 3, 5, C), torch.randn(2, 3, C), torch.randn(2, 3, 4, CC))
    xs = random_sparse(0, batch_size=2, num_frames=2, shape=(4, 4, 4), density=0.3, channels=C)
    E = xs.layout.num_entries
    sparse(xs, torch.randn(E, C), torch.randn(E, 4, CC))
    assert [layer.calls for layer in layers] == [1, 1]


def test_injected_attention_mlp_and_norm():
    class WideMLP(FeedForward):
        def __init__(self, channels, *, mlp_ratio, **kw):
            super().__init__(channels, mlp_ratio=2 * mlp_ratio, **kw)

    class NoAffineNorm(nn.LayerNorm):
        def __init__(self, channels, *, elementwise_affine, eps, **kw):
            super().__init__(channels, elementwise_affine=False, eps=eps, **kw)

    block = ModulatedTransformerCrossBlock(
        C, CC, num_heads=H, temporal="none", mlp_layer=WideMLP, norm_layer=NoAffineNorm, attn_layer=MultiHeadAttention
    )
    assert block.mlp.mlp[0].out_features == 8 * C and block.norm2.weight is None
    vae_block = SparseTransformerBlock(C, num_heads=H, temporal_layer=FrameMeanMixer, mlp_layer=WideMLP)
    assert isinstance(vae_block.attn, FrameMeanMixer)


def test_block_initialize_weights_zeroes_an_inserted_custom_layer():
    block = ModulatedTransformerCrossBlock(C, CC, num_heads=H, temporal="insert", temporal_layer=FrameMeanMixer)
    nn.init.normal_(block.temporal_attn.proj.weight)
    block.initialize_weights()
    assert not block.temporal_attn.proj.weight.any() and not block.adaLN_modulation[1].weight.any()
