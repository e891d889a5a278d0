"""Sparse spacetime tensors and their ops (floor 1).

``SparseTensor`` carries features on active voxels, ``(b*T + t, x, y, z)`` coordinates and a
``SpacetimeLayout``; convolutions run on a selectable backend; down/up-sampling returns explicit maps.
"""

from ss4d.ops.sparse.backends import SparseConvBackend, sparse_conv_backends
from ss4d.ops.sparse.conv import inverse_conv, strided_conv, subm_conv
from ss4d.ops.sparse.kernel_map import ConvMap, KernelMap, strided_conv_map, submanifold_kernel_map
from ss4d.ops.sparse.layout import SpacetimeLayout
from ss4d.ops.sparse.sampling import (
    Pooling,
    PoolMap,
    spatial_downsample,
    spatial_upsample,
    temporal_downsample,
    temporal_upsample,
)
from ss4d.ops.sparse.sites import SparseSites
from ss4d.ops.sparse.tensor import SparseTensor
from ss4d.ops.sparse.weights import (
    weight_from_dense,
    weight_from_spconv,
    weight_from_torchsparse,
    weight_to_dense,
    weight_to_spconv,
    weight_to_torchsparse,
)

__all__ = [
    "ConvMap",
    "KernelMap",
    "PoolMap",
    "Pooling",
    "SparseConvBackend",
    "SparseSites",
    "SparseTensor",
    "SpacetimeLayout",
    "inverse_conv",
    "sparse_conv_backends",
    "spatial_downsample",
    "spatial_upsample",
    "strided_conv",
    "strided_conv_map",
    "subm_conv",
    "submanifold_kernel_map",
    "temporal_downsample",
    "temporal_upsample",
    "weight_from_dense",
    "weight_from_spconv",
    "weight_from_torchsparse",
    "weight_to_dense",
    "weight_to_spconv",
    "weight_to_torchsparse",
]
