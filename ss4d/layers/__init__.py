"""Floor 2: nn blocks built on ``ss4d.ops``.

Positional encodings, norms, attention (dense / sparse / temporal), transformer and residual blocks,
and sparse convolution layers. Every block is usable on its own::

    from ss4d.layers import TemporalLayer
    layer = TemporalLayer(512, num_heads=8, window=8, shift=True)
"""

from ss4d.layers.attention import AttentionCore, MultiHeadAttention, SparseMultiHeadAttention
from ss4d.layers.blocks import (
    FeedForward,
    ModulatedSparseTransformerCrossBlock,
    ModulatedTransformerCrossBlock,
    SparseResBlock,
    SparseTransformerBlock,
    TemporalMode,
    TimestepEmbedder,
)
from ss4d.layers.norm import LayerNorm32, MultiHeadRMSNorm
from ss4d.layers.official_insert import OfficialInsertTemporalCrossBlock
from ss4d.layers.positional import AbsolutePositionEmbedder, HybridPositionalEncoding, RotaryEmbedding, apply_rotary
from ss4d.layers.registry import (
    BlockFactory,
    attention_layers,
    create_attention_layer,
    create_mlp_layer,
    create_norm_layer,
    create_temporal_layer,
    mlp_layers,
    norm_layers,
    register_attention_layer,
    register_mlp_layer,
    register_norm_layer,
    register_temporal_layer,
    temporal_layers,
    zero_output_,
)
from ss4d.layers.sampling import (
    SpacetimeDownsample,
    SpacetimeUpsample,
    SpatialDownsample,
    SpatialUpsample,
    TemporalPack,
    TemporalUnpack,
)
from ss4d.layers.sparse_conv import (
    FactorizedSparseConv4d,
    SparseConv3d,
    SparseConv4d,
    SparseConvOptions,
    SparseDownConv3d,
    SparseInverseConv3d,
    SparseSubMConv,
    SparseTemporalConv1d,
    set_sparse_conv_backend,
)
from ss4d.layers.temporal import TemporalLayer
from ss4d.layers.windows import (
    TokenPartition,
    dense_temporal_partition,
    frame_window_lengths,
    sparse_entry_partition,
    sparse_spacetime_window_partition,
    sparse_temporal_partition,
)

__all__ = [
    "OfficialInsertTemporalCrossBlock",
    "AbsolutePositionEmbedder",
    "AttentionCore",
    "BlockFactory",
    "FactorizedSparseConv4d",
    "FeedForward",
    "HybridPositionalEncoding",
    "LayerNorm32",
    "ModulatedSparseTransformerCrossBlock",
    "ModulatedTransformerCrossBlock",
    "MultiHeadAttention",
    "MultiHeadRMSNorm",
    "RotaryEmbedding",
    "SparseConv3d",
    "SparseConv4d",
    "SparseConvOptions",
    "SparseDownConv3d",
    "SparseInverseConv3d",
    "SparseMultiHeadAttention",
    "SparseResBlock",
    "SparseSubMConv",
    "SparseTemporalConv1d",
    "SparseTransformerBlock",
    "SpacetimeDownsample",
    "SpacetimeUpsample",
    "SpatialDownsample",
    "SpatialUpsample",
    "TemporalLayer",
    "TemporalMode",
    "TemporalPack",
    "TemporalUnpack",
    "TimestepEmbedder",
    "TokenPartition",
    "apply_rotary",
    "attention_layers",
    "create_attention_layer",
    "create_mlp_layer",
    "create_norm_layer",
    "create_temporal_layer",
    "dense_temporal_partition",
    "frame_window_lengths",
    "mlp_layers",
    "norm_layers",
    "register_attention_layer",
    "register_mlp_layer",
    "register_norm_layer",
    "register_temporal_layer",
    "set_sparse_conv_backend",
    "sparse_entry_partition",
    "sparse_spacetime_window_partition",
    "sparse_temporal_partition",
    "temporal_layers",
    "zero_output_",
]
