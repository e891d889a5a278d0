"""`SparseSites`: an immutable set of active voxels in spacetime, with memoised derived data.

A :class:`SparseSites` is what several :class:`~ss4d.ops.sparse.SparseTensor` objects with different
features share: the coordinates, the :class:`SpacetimeLayout`, the spatial grid shape, and whatever was
computed from them (sorted hash keys, kernel maps, backend index pairs). The memo belongs to the
coordinate set, so it can never be applied to another one.
"""

from collections.abc import Callable
from typing import TypeVar

import torch
from jaxtyping import Int, Int32, Int64
from torch import Tensor

from ss4d.errors import CoordinateError
from ss4d.ops.sparse.immutable import Immutable
from ss4d.ops.sparse.layout import SpacetimeLayout

__all__ = ["SparseSites", "linear_keys"]

V = TypeVar("V")

_MAX_KEY = 2**62


def linear_keys(
    coords: Int[Tensor, "n 4"], num_entries: int, spatial_shape: tuple[int, int, int]
) -> Int64[Tensor, " n"]:
    """Row-major linear index of ``(entry, x, y, z)`` in a grid of ``num_entries x X x Y x Z``.

    Sorting by key sorts by entry first, so sorted keys keep rows grouped by entry.
    """
    c = coords.long()
    sx, sy, sz = spatial_shape
    return ((c[:, 0] * sx + c[:, 1]) * sy + c[:, 2]) * sz + c[:, 3]


class SparseSites(Immutable):
    """Coordinates ``(b*T + t, x, y, z)`` of active voxels, their layout and grid shape.

    Built by ``SparseTensor`` after validation, or by ss4d ops that produce valid coordinates by
    construction. Do not construct directly from untrusted data: use ``SparseTensor(feats, coords, ...)``.
    """

    __slots__ = ("coords", "layout", "spatial_shape", "_memo")

    coords: Int32[Tensor, "n 4"]
    layout: SpacetimeLayout
    spatial_shape: tuple[int, int, int]

    def __init__(
        self, coords: Int32[Tensor, "n 4"], layout: SpacetimeLayout, spatial_shape: tuple[int, int, int]
    ) -> None:
        self._init_slots(coords=coords, layout=layout, spatial_shape=tuple(int(s) for s in spatial_shape), _memo={})

    def __repr__(self) -> str:
        return (
            f"SparseSites(n={self.num_voxels}, layout={self.layout}, spatial_shape={self.spatial_shape}, "
            f"device={self.device})"
        )

    @property
    def num_voxels(self) -> int:
        return self.coords.shape[0]

    @property
    def device(self) -> torch.device:
        return self.coords.device

    def memo(self, key: tuple, build: Callable[[], V]) -> V:
        """The value cached under ``key`` for this coordinate set, built on first use."""
        try:
            return self._memo[key]
        except KeyError:
            # Built as normal tensors even under inference_mode, so a later training pass can reuse them.
            with torch.inference_mode(False):
                value = build()
            self._memo[key] = value
            return value

    def same_as(self, other: "SparseSites") -> bool:
        """True when ``other`` holds the same coordinates in the same order (cheap when it is this object)."""
        if other is self:
            return True
        return (
            self.layout == other.layout
            and self.spatial_shape == other.spatial_shape
            and self.coords.shape == other.coords.shape
            and self.coords.device == other.coords.device
            and bool(torch.equal(self.coords, other.coords))
        )

    # --- derived data -------------------------------------------------------------------------------
    def keys(self) -> Int64[Tensor, " n"]:
        """Linear keys of the rows (see :func:`linear_keys`)."""
        return self.memo(("keys",), lambda: linear_keys(self.coords, self.layout.num_entries, self.spatial_shape))

    def sorted_keys(self) -> tuple[Int64[Tensor, " n"], Int64[Tensor, " n"]]:
        """``(sorted_keys, perm)`` with ``keys()[perm] == sorted_keys``: the hash table of the set."""

        def build() -> tuple[Tensor, Tensor]:
            keys = self.keys()
            sorted_keys, perm = torch.sort(keys)
            return sorted_keys, perm

        return self.memo(("sorted_keys",), build)

    def entry_offsets(self) -> Int64[Tensor, " e1"]:
        """Row offsets of the entries: rows of entry ``e`` are ``offsets[e]:offsets[e+1]`` (length E + 1)."""

        def build() -> Tensor:
            counts = torch.bincount(self.coords[:, 0].long(), minlength=self.layout.num_entries)
            return torch.cat([counts.new_zeros(1), counts.cumsum(0)])

        return self.memo(("entry_offsets",), build)


def check_coords(
    coords: Tensor, layout: SpacetimeLayout, spatial_shape: tuple[int, int, int] | None
) -> tuple[Tensor, Tensor | None, tuple[int, int, int]]:
    """Validate raw coordinates; return ``(int32 coords grouped by entry, row permutation or None, shape)``.

    Raises:
        TypeError: ``coords`` is not an integer tensor.
        CoordinateError: wrong shape, negative values, values outside the layout or grid, duplicates.
    """
    if not isinstance(coords, Tensor):
        raise TypeError(f"`coords` must be a torch.Tensor, got {type(coords).__name__}")
    if coords.dtype.is_floating_point or coords.dtype.is_complex or coords.dtype == torch.bool:
        raise TypeError(
            f"`coords` must be an integer tensor (int32 preferred), got {coords.dtype}; "
            "voxel coordinates are integer grid indices, convert with `.round().int()` if they are exact"
        )
    if coords.ndim != 2 or coords.shape[1] != 4:
        raise CoordinateError(f"`coords` must have shape [n, 4] = (b*T + t, x, y, z), got {tuple(coords.shape)}")
    n = coords.shape[0]
    if n and bool((coords < 0).any()):
        bad = coords[(coords < 0).any(dim=1)][0].tolist()
        raise CoordinateError(f"`coords` must be >= 0, got a row {bad}")
    if n and int(coords[:, 0].max()) >= layout.num_entries:
        raise CoordinateError(
            f"batch index {int(coords[:, 0].max())} is outside {layout} "
            f"(entries 0..{layout.num_entries - 1}, entry = b * num_frames + t)"
        )
    if spatial_shape is None:
        spatial_shape = tuple(int(v) + 1 for v in coords[:, 1:].amax(dim=0).tolist()) if n else (1, 1, 1)
    else:
        spatial_shape = tuple(int(s) for s in spatial_shape)
        if len(spatial_shape) != 3 or min(spatial_shape) < 1:
            raise CoordinateError(f"`spatial_shape` must be 3 positive ints, got {spatial_shape}")
        if n:
            top = coords[:, 1:].amax(dim=0)
            limit = torch.tensor(spatial_shape, device=coords.device)
            if bool((top >= limit).any()):
                raise CoordinateError(
                    f"voxel coordinates reach {top.tolist()}, outside spatial_shape {list(spatial_shape)}"
                )
    volume = layout.num_entries * spatial_shape[0] * spatial_shape[1] * spatial_shape[2]
    if volume >= _MAX_KEY:
        raise CoordinateError(f"grid of {layout.num_entries} entries x {spatial_shape} is too large to index")
    if coords.dtype != torch.int32:
        if n and int(coords.max()) > torch.iinfo(torch.int32).max:
            raise CoordinateError("`coords` values do not fit in int32")
        coords = coords.to(torch.int32)
    perm = None
    entries = coords[:, 0]
    if n > 1 and bool((entries[1:] < entries[:-1]).any()):
        perm = torch.argsort(entries, stable=True)
        coords = coords[perm]
    coords = coords.contiguous()
    return coords, perm, spatial_shape


def check_unique(sites: SparseSites) -> None:
    """Raise :class:`CoordinateError` when two rows share ``(entry, x, y, z)``."""
    sorted_keys, perm = sites.sorted_keys()
    if sorted_keys.numel() < 2:
        return
    dup = sorted_keys[1:] == sorted_keys[:-1]
    if bool(dup.any()):
        i = int(torch.nonzero(dup)[0, 0])
        row = sites.coords[perm[i]].tolist()
        count = int(dup.sum()) + 0
        raise CoordinateError(
            f"duplicate voxel coordinates (entry, x, y, z) = {row} ({count} duplicate rows in all); "
            "merge duplicates first, e.g. with torch.unique(coords, dim=0, return_inverse=True) and a scatter"
        )
