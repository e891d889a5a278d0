"""Floor 2: nn blocks built on ``ss4d.ops`` (sparse convs now; attention and transformer blocks next)."""

from ss4d.layers.sparse_conv import (
    FactorizedSparseConv4d,
    SparseConv3d,
    SparseConv4d,
    SparseDownConv3d,
    SparseInverseConv3d,
    SparseSubMConv,
    SparseTemporalConv1d,
    set_sparse_conv_backend,
)

__all__ = [
    "FactorizedSparseConv4d",
    "SparseConv3d",
    "SparseConv4d",
    "SparseDownConv3d",
    "SparseInverseConv3d",
    "SparseSubMConv",
    "SparseTemporalConv1d",
    "set_sparse_conv_backend",
]
