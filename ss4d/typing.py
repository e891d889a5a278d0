"""The one axis vocabulary used in ss4d's shape annotations (jaxtyping).

Axis names:
    b  samples in a batch          t  frames per sample          m  tokens per frame
    n  active voxels (all entries) c  channels                   h  heads
    k  kernel volume               r  grid resolution            e  batch entries (b * t)

Sparse rows are grouped by batch entry ``b * T + t`` in increasing order (see ``ss4d.ops.sparse``).
"""

from jaxtyping import Float, Int, Int32, Int64
from torch import Tensor

__all__ = ["Coords", "Feats", "Float", "Index", "Int", "Int32", "Int64", "Tensor", "Weight"]

Feats = Float[Tensor, "n c"]
"""Voxel features, rows grouped by batch entry."""

Coords = Int32[Tensor, "n 4"]
"""Voxel coordinates ``(b * T + t, x, y, z)``."""

Index = Int64[Tensor, " n"]
"""Row indices into a feature matrix."""

Weight = Float[Tensor, "k ci co"]
"""Sparse-conv weight in ss4d's layout: kernel offsets (C order over (kt, kx, ky, kz)), in, out."""
