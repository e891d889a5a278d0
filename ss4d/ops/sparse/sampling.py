"""Spatial and temporal down-sampling of sparse tensors, with explicit maps for the exact inverse.

Every down-sampling returns ``(coarse, PoolMap)``; the matching up-sampling takes the map and writes
back to exactly the fine sites it came from (same rows, same order). There is no cache to look a map up
in: the caller holds it (a U-Net keeps a stack of them).

Pooling modes:

* ``"mean"``: the true mean over the fine voxels merged into a coarse one (default for new models);
* ``"official"``: ``sum / (n + 1)``, what the official SS4D / TRELLIS code computes (its
  ``scatter_reduce(..., "mean")`` includes the zero initial value; docs/design.md, "Official quirks
  kept"). Pretrained SS4D and TRELLIS weights expect it; converted checkpoints switch it on.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from ss4d.errors import MappingMismatchError
from ss4d.ops.modes import Pooling, check_choice
from ss4d.ops.sparse.kernel_map import pool_sites
from ss4d.ops.sparse.layout import SpacetimeLayout
from ss4d.ops.sparse.sites import SparseSites
from ss4d.ops.sparse.tensor import SparseTensor

__all__ = [
    "Pooling",
    "PoolMap",
    "pool_features",
    "spatial_downsample",
    "spatial_upsample",
    "temporal_downsample",
    "temporal_upsample",
]


@dataclass(frozen=True, eq=False)
class PoolMap:
    """Fine rows -> coarse rows: ``parent[i]`` is the coarse row of fine row ``i``; ``counts[j]`` children."""

    kind: Literal["spatial", "temporal"]
    factor: int
    fine: SparseSites
    coarse: SparseSites
    parent: Int64[Tensor, " n"]
    counts: Int64[Tensor, " m"]


def pool_features(feats: Float[Tensor, "n c"], pool_map: PoolMap, pooling: Pooling = "mean") -> Float[Tensor, "m c"]:
    """Reduce fine rows into their coarse parents (``"mean"`` or the official ``sum / (n + 1)``)."""
    check_choice(pooling, Pooling, "pooling")
    summed = feats.new_zeros(pool_map.coarse.num_voxels, feats.shape[1]).index_add(0, pool_map.parent, feats)
    denom = pool_map.counts + (1 if pooling == "official" else 0)
    return summed / denom.to(feats.dtype).unsqueeze(1)


def spatial_downsample(x: SparseTensor, factor: int = 2, *, pooling: Pooling = "mean") -> tuple[SparseTensor, PoolMap]:
    """Merge the ``factor^3`` children of each coarse voxel within a frame: ``xyz -> xyz // factor``.

    Returns the coarse tensor (grid ``ceil(S / factor)``, rows sorted by ``(entry, x, y, z)``) and the map
    that :func:`spatial_upsample` inverts.
    """
    check_choice(pooling, Pooling, "pooling")
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"`factor` must be an int >= 1, got {factor!r}")
    pool_map = x.sites.memo(("spatial_pool", factor), lambda: _spatial_map(x.sites, factor))
    return SparseTensor.from_sites(pool_features(x.feats, pool_map, pooling), pool_map.coarse), pool_map


def _spatial_map(sites: SparseSites, factor: int) -> PoolMap:
    c = sites.coords.long()
    coarse_coords = torch.cat([c[:, :1], torch.div(c[:, 1:], factor, rounding_mode="floor")], dim=1)
    shape = tuple(-(-s // factor) for s in sites.spatial_shape)
    coarse, parent, counts = pool_sites(coarse_coords, sites.layout, shape)  # type: ignore[arg-type]
    return PoolMap("spatial", factor, sites, coarse, parent, counts)


def temporal_downsample(x: SparseTensor, *, pooling: Pooling = "mean") -> tuple[SparseTensor, PoolMap]:
    """Merge frames ``(2k, 2k + 1)`` of each sample at the same xyz: layout ``(B, T) -> (B, T // 2)``.

    The coarse voxel set is the union of the two frames' sets (docs/design.md, "The blocks").

    Raises:
        FrameCountError: odd ``T``.
    """
    check_choice(pooling, Pooling, "pooling")
    x.layout.packed()  # raises FrameCountError on odd T
    pool_map = x.sites.memo(("temporal_pool", 2), lambda: _temporal_map(x.sites))
    return SparseTensor.from_sites(pool_features(x.feats, pool_map, pooling), pool_map.coarse), pool_map


def _temporal_map(sites: SparseSites) -> PoolMap:
    c = sites.coords.long()
    # T is even, so (b*T + t) // 2 == b*(T/2) + t//2.
    coarse_coords = torch.cat([torch.div(c[:, :1], 2, rounding_mode="floor"), c[:, 1:]], dim=1)
    layout: SpacetimeLayout = sites.layout.packed()
    coarse, parent, counts = pool_sites(coarse_coords, layout, sites.spatial_shape)
    return PoolMap("temporal", 2, sites, coarse, parent, counts)


def _upsample(y: SparseTensor, pool_map: PoolMap, kind: str) -> SparseTensor:
    if pool_map.kind != kind:
        raise MappingMismatchError(f"expected a {kind} PoolMap, got a {pool_map.kind} one")
    if not y.sites.same_as(pool_map.coarse):
        raise MappingMismatchError(
            f"{kind}_upsample: `y` ({y.sites}) is not on the coarse sites of this map ({pool_map.coarse}); "
            "use the map returned by the down-sampling that produced y's coordinates"
        )
    return SparseTensor.from_sites(y.feats[pool_map.parent], pool_map.fine)


def spatial_upsample(y: SparseTensor, pool_map: PoolMap) -> SparseTensor:
    """Copy each coarse feature back to its fine children: the exact inverse of :func:`spatial_downsample`'s sites."""
    return _upsample(y, pool_map, "spatial")


def temporal_upsample(y: SparseTensor, pool_map: PoolMap) -> SparseTensor:
    """Copy each merged feature back to the voxels of frames ``2k`` and ``2k + 1`` it came from.

    No voxel is created: one present only in frame ``2k`` comes back only in frame ``2k``.
    """
    return _upsample(y, pool_map, "temporal")
