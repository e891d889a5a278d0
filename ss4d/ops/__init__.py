"""Floor 1: tensors, kernels and backends. Imports nothing from ss4d's higher floors."""

from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, sparse_conv_backends

__all__ = ["SparseTensor", "SpacetimeLayout", "sparse_conv_backends"]
