"""Spatial and temporal down/up-sampling layers (thin, typed wrappers of ``ss4d.ops.sparse.sampling``).

``TemporalPack`` merges frames ``(2k, 2k + 1)``: for sparse tensors the voxels at the same xyz (the union
of both frames' voxels, SS4D's CompNet compression) and returns the map ``TemporalUnpack`` needs; for
dense ``[B, T, M, C]`` tokens it averages the pair. Odd ``T`` raises :class:`~ss4d.errors.FrameCountError`.
``SpacetimeDownsample`` / ``SpacetimeUpsample`` do both (space then time, and back).

Every module here is parameter-free and says which way it goes (``direction``: ``"down"`` returns
``(out, map)``, ``"up"`` takes that map), so :class:`~ss4d.layers.SparseResBlock` takes any of them.
"""

from typing import ClassVar, Literal

from jaxtyping import Float
from torch import Tensor, nn

from ss4d.ops.modes import check_choice
from ss4d.ops.sparse import (
    Pooling,
    PoolMap,
    SparseTensor,
    spatial_downsample,
    spatial_upsample,
    temporal_downsample,
    temporal_upsample,
)
from ss4d.ops.sparse.layout import SpacetimeLayout

__all__ = [
    "SpacetimeDownsample",
    "SpacetimeUpsample",
    "SpatialDownsample",
    "SpatialUpsample",
    "TemporalPack",
    "TemporalUnpack",
]


class SpatialDownsample(nn.Module):
    """2x (or ``factor``) spatial pooling per frame: ``x -> (coarse, map)``; ``pooling`` "mean" or "official"."""

    direction: ClassVar[Literal["down"]] = "down"

    def __init__(self, factor: int = 2, *, pooling: Pooling = "mean") -> None:
        super().__init__()
        self.factor, self.pooling = factor, check_choice(pooling, Pooling, "pooling")

    def forward(self, x: SparseTensor) -> tuple[SparseTensor, PoolMap]:
        return spatial_downsample(x, self.factor, pooling=self.pooling)


class SpatialUpsample(nn.Module):
    """Copy coarse features back to exactly the fine voxels of ``pool_map``."""

    direction: ClassVar[Literal["up"]] = "up"

    def forward(self, y: SparseTensor, pool_map: PoolMap) -> SparseTensor:
        return spatial_upsample(y, pool_map)


class TemporalPack(nn.Module):
    """Merge frame pairs ``(2k, 2k + 1)``: ``T -> T / 2``.

    Sparse input returns ``(packed, map)``; dense ``[B, T, M, C]`` returns the pair mean ``[B, T/2, M, C]``.
    """

    direction: ClassVar[Literal["down"]] = "down"

    def __init__(self, *, pooling: Pooling = "mean") -> None:
        super().__init__()
        self.pooling = check_choice(pooling, Pooling, "pooling")

    def forward(
        self, x: SparseTensor | Float[Tensor, "b t m c"]
    ) -> tuple[SparseTensor, PoolMap] | Float[Tensor, "b t2 m c"]:
        if isinstance(x, SparseTensor):
            return temporal_downsample(x, pooling=self.pooling)
        B, T = x.shape[:2]
        SpacetimeLayout(B, T).packed()  # raises FrameCountError on odd T
        return x.view(B, T // 2, 2, *x.shape[2:]).mean(dim=2)


class TemporalUnpack(nn.Module):
    """Inverse of :class:`TemporalPack`: sparse with its map (exact voxels back), dense by repeating pairs."""

    direction: ClassVar[Literal["up"]] = "up"

    def forward(
        self, y: SparseTensor | Float[Tensor, "b t2 m c"], pool_map: PoolMap | None = None
    ) -> SparseTensor | Float[Tensor, "b t m c"]:
        if isinstance(y, SparseTensor):
            if pool_map is None:
                raise ValueError("TemporalUnpack of a SparseTensor needs the map returned by TemporalPack")
            return temporal_upsample(y, pool_map)
        return y.repeat_interleave(2, dim=1)


class SpacetimeDownsample(nn.Module):
    """2x spatial pooling per frame, then frame-pair merging: ``x -> (coarse, (spatial_map, temporal_map))``.

    Odd T raises :class:`~ss4d.errors.FrameCountError` before any work (the ``"4d"`` CompNet's resampling).
    """

    direction: ClassVar[Literal["down"]] = "down"

    def __init__(self, *, pooling: Pooling = "mean") -> None:
        super().__init__()
        self.pooling = check_choice(pooling, Pooling, "pooling")

    def forward(self, x: SparseTensor) -> tuple[SparseTensor, tuple[PoolMap, PoolMap]]:
        x.layout.packed()  # odd T fails before any work
        x, spatial_map = spatial_downsample(x, pooling=self.pooling)
        x, temporal_map = temporal_downsample(x, pooling=self.pooling)
        return x, (spatial_map, temporal_map)


class SpacetimeUpsample(nn.Module):
    """Inverse of :class:`SpacetimeDownsample`: unpack the frames, then back to the fine voxels."""

    direction: ClassVar[Literal["up"]] = "up"

    def forward(self, y: SparseTensor, pool_maps: tuple[PoolMap, PoolMap]) -> SparseTensor:
        spatial_map, temporal_map = pool_maps
        return spatial_upsample(temporal_upsample(y, temporal_map), spatial_map)
