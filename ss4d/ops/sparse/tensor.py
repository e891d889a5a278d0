"""`SparseTensor`: features on active voxels of a spacetime grid (docs/design.md, "Spacetime layout").

``feats [n, c]`` float, ``coords [n, 4]`` int32 ``(b*T + t, x, y, z)``, and a
:class:`SpacetimeLayout` ``(batch_size B, num_frames T)`` carried by the tensor, so no block needs a
``num_frames`` argument that could disagree with the data. Rows are grouped by batch entry in
increasing order, so per-frame and per-sample rows are contiguous. The tensor is immutable:
:meth:`SparseTensor.replace` gives new features on the same :class:`SparseSites` (sharing its kernel
maps), and every op returns a new tensor.
"""

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from jaxtyping import Bool, Float, Int32
from torch import Tensor

from ss4d.errors import CoordinateError, MappingMismatchError
from ss4d.ops.sparse.immutable import Immutable
from ss4d.ops.sparse.layout import SpacetimeLayout
from ss4d.ops.sparse.sites import SparseSites, check_coords, check_unique

__all__ = ["SparseTensor"]


class SparseTensor(Immutable):
    """Features on the active voxels of ``B`` samples x ``T`` frames of a 3D grid.

    Args:
        feats: ``[n, c]`` floating-point features.
        coords: ``[n, 4]`` integer ``(b * T + t, x, y, z)``; int32 is stored (other integer dtypes are
            converted). Rows may come in any order: they are stably regrouped by batch entry.
        layout: samples and frames; default ``SpacetimeLayout(max(batch index) + 1, 1)`` (plain 3D).
        spatial_shape: grid size ``(X, Y, Z)``; default ``max(xyz) + 1``.

    Raises:
        TypeError: ``feats`` is not floating point or ``coords`` is not an integer tensor.
        CoordinateError: wrong shapes, negative or out-of-range coordinates, duplicates within an entry,
            or ``feats`` and ``coords`` with different row counts or devices.
    """

    __slots__ = ("feats", "sites")
    _mutation_hint = "; use .replace(feats) for new features"

    feats: Float[Tensor, "n c"]
    sites: SparseSites

    def __init__(
        self,
        feats: Tensor,
        coords: Tensor,
        layout: SpacetimeLayout | None = None,
        *,
        spatial_shape: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(feats, Tensor) or not feats.dtype.is_floating_point:
            got = feats.dtype if isinstance(feats, Tensor) else type(feats).__name__
            raise TypeError(f"`feats` must be a floating-point tensor [n, c], got {got}")
        if feats.ndim != 2:
            raise CoordinateError(f"`feats` must have shape [n, c], got {tuple(feats.shape)}")
        if not isinstance(coords, Tensor):
            raise TypeError(f"`coords` must be a torch.Tensor, got {type(coords).__name__}")
        if coords.ndim >= 1 and coords.shape[0] != feats.shape[0]:
            raise CoordinateError(f"`feats` has {feats.shape[0]} rows but `coords` has {coords.shape[0]}")
        if coords.device != feats.device:
            raise CoordinateError(f"`feats` is on {feats.device} but `coords` on {coords.device}")
        if layout is None:
            if coords.ndim != 2 or coords.shape[1] != 4:
                raise CoordinateError(
                    f"`coords` must have shape [n, 4] = (b*T + t, x, y, z), got {tuple(coords.shape)}"
                )
            if coords.dtype.is_floating_point:
                check_coords(coords, SpacetimeLayout(1), spatial_shape)  # raises the dtype error
            top = int(coords[:, 0].max()) + 1 if coords.ndim == 2 and coords.shape[0] else 1
            layout = SpacetimeLayout(max(top, 1), 1)
        if not isinstance(layout, SpacetimeLayout):
            raise TypeError(f"`layout` must be a SpacetimeLayout, got {type(layout).__name__}")
        coords, perm, shape = check_coords(coords, layout, None if spatial_shape is None else tuple(spatial_shape))
        if perm is not None:
            feats = feats[perm]
        sites = SparseSites(coords, layout, shape)
        check_unique(sites)
        self._init_slots(feats=feats, sites=sites)

    @classmethod
    def from_sites(cls, feats: Float[Tensor, "n c"], sites: SparseSites) -> "SparseTensor":
        """Wrap ``feats`` on already-validated ``sites`` (no checks beyond the row count)."""
        if feats.ndim != 2 or feats.shape[0] != sites.num_voxels:
            raise CoordinateError(
                f"`feats` must have shape [{sites.num_voxels}, c] for these sites, got {tuple(feats.shape)}"
            )
        obj = object.__new__(cls)
        obj._init_slots(feats=feats, sites=sites)
        return obj

    def __repr__(self) -> str:
        return (
            f"SparseTensor(n={self.num_voxels}, c={self.num_channels}, layout={self.layout}, "
            f"spatial_shape={self.spatial_shape}, dtype={self.dtype}, device={self.device})"
        )

    # --- properties ---------------------------------------------------------------------------------
    @property
    def coords(self) -> Int32[Tensor, "n 4"]:
        return self.sites.coords

    @property
    def layout(self) -> SpacetimeLayout:
        return self.sites.layout

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return self.sites.spatial_shape

    @property
    def num_voxels(self) -> int:
        return self.feats.shape[0]

    @property
    def num_channels(self) -> int:
        return self.feats.shape[1]

    @property
    def shape(self) -> torch.Size:
        """``(n, c)``, the shape of :attr:`feats`."""
        return self.feats.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.feats.dtype

    @property
    def device(self) -> torch.device:
        return self.feats.device

    @property
    def entry_index(self) -> Int32[Tensor, " n"]:
        """Batch entry ``b * T + t`` of each row."""
        return self.coords[:, 0]

    @property
    def frame_index(self) -> Int32[Tensor, " n"]:
        """Frame ``t`` (0..T-1 within its sample) of each row."""
        return self.coords[:, 0] % self.layout.num_frames

    @property
    def sample_index(self) -> Int32[Tensor, " n"]:
        """Sample ``b`` of each row."""
        return torch.div(self.coords[:, 0], self.layout.num_frames, rounding_mode="floor")

    @property
    def xyz(self) -> Int32[Tensor, "n 3"]:
        return self.coords[:, 1:]

    # --- features -----------------------------------------------------------------------------------
    def replace(self, feats: Float[Tensor, "n c2"]) -> "SparseTensor":
        """Same sites (and cached kernel maps), new features ``[n, c2]``."""
        if not isinstance(feats, Tensor) or not feats.dtype.is_floating_point:
            raise TypeError("`feats` must be a floating-point tensor")
        if feats.device != self.device:
            raise CoordinateError(f"`feats` is on {feats.device}, the sites on {self.device}; use .to() first")
        return SparseTensor.from_sites(feats, self.sites)

    def apply(self, fn: Callable[[Tensor], Tensor]) -> "SparseTensor":
        """``replace(fn(feats))``: run a row-wise function (linear, norm, activation) on the features."""
        return self.replace(fn(self.feats))

    def per_entry(self, values: Float[Tensor, "e c"]) -> Float[Tensor, "n c"]:
        """Expand one row per batch entry ``[B*T, c]`` (e.g. a per-frame modulation) to every voxel."""
        if values.ndim != 2 or values.shape[0] != self.layout.num_entries:
            raise CoordinateError(
                f"`values` must have shape [{self.layout.num_entries}, c] (one row per b*T + t), "
                f"got {tuple(values.shape)}"
            )
        return values[self.coords[:, 0].long()]

    def to(
        self,
        device: torch.device | str | torch.dtype | None = None,
        dtype: torch.dtype | None = None,
        non_blocking: bool = False,
    ) -> "SparseTensor":
        """Move to ``device`` and/or cast features to ``dtype`` (coordinates stay int32); ``x.to(torch.half)`` works."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        feats = self.feats.to(device=device, dtype=dtype, non_blocking=non_blocking)
        if feats.device == self.device:
            return SparseTensor.from_sites(feats, self.sites)
        sites = SparseSites(self.coords.to(feats.device, non_blocking=non_blocking), self.layout, self.spatial_shape)
        return SparseTensor.from_sites(feats, sites)

    def detach(self) -> "SparseTensor":
        return self.replace(self.feats.detach())

    def same_sites(self, other: "SparseTensor") -> bool:
        """True when ``other`` has the same coordinates in the same row order."""
        return self.sites.same_as(other.sites)

    def _binary(self, other: Any, op: Callable[[Tensor, Any], Tensor], name: str) -> "SparseTensor":
        if isinstance(other, SparseTensor):
            if not self.same_sites(other):
                raise MappingMismatchError(
                    f"`{name}` of two SparseTensors needs identical coordinates (same rows, same order); "
                    f"got {self.sites} and {other.sites}"
                )
            other = other.feats
        elif isinstance(other, Tensor) and other.ndim > 0:
            try:
                torch.broadcast_shapes(other.shape, self.feats.shape)
            except RuntimeError:
                raise CoordinateError(
                    f"`{name}`: a tensor of shape {tuple(other.shape)} does not broadcast to feats "
                    f"{tuple(self.feats.shape)}; for one row per batch entry use x.per_entry(values)"
                ) from None
            if torch.broadcast_shapes(other.shape, self.feats.shape) != self.feats.shape:
                raise CoordinateError(f"`{name}` would change the feature shape {tuple(self.feats.shape)}")
        return self.replace(op(self.feats, other))

    def __add__(self, other: Any) -> "SparseTensor":
        return self._binary(other, operator.add, "+")

    def __radd__(self, other: Any) -> "SparseTensor":
        return self._binary(other, lambda a, b: b + a, "+")

    def __sub__(self, other: Any) -> "SparseTensor":
        return self._binary(other, operator.sub, "-")

    def __rsub__(self, other: Any) -> "SparseTensor":
        return self._binary(other, lambda a, b: b - a, "-")

    def __mul__(self, other: Any) -> "SparseTensor":
        return self._binary(other, operator.mul, "*")

    def __rmul__(self, other: Any) -> "SparseTensor":
        return self._binary(other, lambda a, b: b * a, "*")

    def __truediv__(self, other: Any) -> "SparseTensor":
        return self._binary(other, operator.truediv, "/")

    def __neg__(self) -> "SparseTensor":
        return self.replace(-self.feats)

    # --- slicing by frame and sample ----------------------------------------------------------------
    def frame(self, t: int) -> "SparseTensor":
        """Frame ``t`` of every sample, as a 3D tensor with layout ``(B, 1)`` (batch index = sample)."""
        T = self.layout.num_frames
        if not 0 <= t < T:
            raise IndexError(f"frame {t} is outside 0..{T - 1}")
        keep = self.frame_index == t
        coords = self.coords[keep].clone()
        coords[:, 0] = torch.div(coords[:, 0], T, rounding_mode="floor")
        sites = SparseSites(coords, SpacetimeLayout(self.layout.batch_size, 1), self.spatial_shape)
        return SparseTensor.from_sites(self.feats[keep], sites)

    def unbind_frames(self) -> list["SparseTensor"]:
        """``[x.frame(0), ..., x.frame(T - 1)]``."""
        return [self.frame(t) for t in range(self.layout.num_frames)]

    def sample(self, b: int) -> "SparseTensor":
        """Sample ``b`` with all its frames, layout ``(1, T)`` (batch index = frame)."""
        B, T = self.layout.batch_size, self.layout.num_frames
        if not 0 <= b < B:
            raise IndexError(f"sample {b} is outside 0..{B - 1}")
        offsets = self.sites.entry_offsets()
        lo, hi = int(offsets[b * T]), int(offsets[(b + 1) * T])
        coords = self.coords[lo:hi].clone()
        coords[:, 0] -= b * T
        return SparseTensor.from_sites(
            self.feats[lo:hi], SparseSites(coords, SpacetimeLayout(1, T), self.spatial_shape)
        )

    def unbind_samples(self) -> list["SparseTensor"]:
        return [self.sample(b) for b in range(self.layout.batch_size)]

    @staticmethod
    def cat_samples(tensors: Sequence["SparseTensor"]) -> "SparseTensor":
        """Concatenate samples: layouts ``(B_i, T)`` -> ``(sum B_i, T)``; same T, grid, channels, device.

        Raises:
            ValueError: empty list or tensors that disagree on T, grid, channels, dtype or device.
        """
        if not tensors:
            raise ValueError("cat_samples needs at least one tensor")
        first = tensors[0]
        for i, x in enumerate(tensors):
            for attr in ("spatial_shape", "num_channels", "dtype", "device"):
                if getattr(x, attr) != getattr(first, attr):
                    raise ValueError(
                        f"cat_samples: tensor {i} has {attr}={getattr(x, attr)}, tensor 0 has {getattr(first, attr)}"
                    )
            if x.layout.num_frames != first.layout.num_frames:
                raise ValueError(
                    f"cat_samples: tensor {i} has T={x.layout.num_frames}, tensor 0 has T={first.layout.num_frames}"
                )
        coords, start = [], 0
        for x in tensors:
            c = x.coords.clone()
            c[:, 0] += start
            coords.append(c)
            start += x.layout.num_entries
        layout = SpacetimeLayout(sum(x.layout.batch_size for x in tensors), first.layout.num_frames)
        sites = SparseSites(torch.cat(coords), layout, first.spatial_shape)
        return SparseTensor.from_sites(torch.cat([x.feats for x in tensors]), sites)

    @staticmethod
    def stack_frames(frames: Sequence["SparseTensor"]) -> "SparseTensor":
        """Stack per-frame 3D tensors (each layout ``(B, 1)``) into one spacetime tensor ``(B, T)``."""
        if not frames:
            raise ValueError("stack_frames needs at least one frame")
        first, T = frames[0], len(frames)
        for i, x in enumerate(frames):
            if x.layout != SpacetimeLayout(first.layout.batch_size, 1):
                raise ValueError(
                    f"stack_frames: frame {i} has layout {x.layout}, expected ({first.layout.batch_size}, 1)"
                )
            for attr in ("spatial_shape", "num_channels", "dtype", "device"):
                if getattr(x, attr) != getattr(first, attr):
                    raise ValueError(
                        f"stack_frames: frame {i} has {attr}={getattr(x, attr)}, frame 0 has {getattr(first, attr)}"
                    )
        coords = []
        for t, x in enumerate(frames):
            c = x.coords.clone()
            c[:, 0] = c[:, 0] * T + t
            coords.append(c)
        coords_all = torch.cat(coords)
        order = torch.argsort(coords_all[:, 0], stable=True)
        sites = SparseSites(coords_all[order], SpacetimeLayout(first.layout.batch_size, T), first.spatial_shape)
        return SparseTensor.from_sites(torch.cat([x.feats for x in frames])[order], sites)

    # --- dense conversion ---------------------------------------------------------------------------
    @staticmethod
    def from_dense(
        dense: Float[Tensor, "b t c x y z"] | Float[Tensor, "b c x y z"],
        mask: Bool[Tensor, "b t x y z"] | Bool[Tensor, "b x y z"] | None = None,
    ) -> "SparseTensor":
        """Active sites of a dense ``[B, T, C, X, Y, Z]`` (or 3D ``[B, C, X, Y, Z]``) grid.

        Args:
            dense: the grid; 5D input is read as ``T = 1``.
            mask: which voxels are active; default: any channel is non-zero.
        """
        if dense.ndim == 5:
            dense = dense.unsqueeze(1)
            if mask is not None and mask.ndim == 4:
                mask = mask.unsqueeze(1)
        if dense.ndim != 6:
            raise CoordinateError(f"`dense` must be [B, T, C, X, Y, Z] or [B, C, X, Y, Z], got {tuple(dense.shape)}")
        B, T, _, X, Y, Z = dense.shape
        channels_last = dense.permute(0, 1, 3, 4, 5, 2)
        if mask is None:
            mask = channels_last.ne(0).any(dim=-1)
        if mask.shape != (B, T, X, Y, Z) or mask.dtype != torch.bool:
            raise CoordinateError(
                f"`mask` must be bool [B, T, X, Y, Z] = {[B, T, X, Y, Z]}, got {mask.dtype} {tuple(mask.shape)}"
            )
        idx = torch.nonzero(mask)  # lexicographic (b, t, x, y, z): grouped by entry
        coords = torch.stack([idx[:, 0] * T + idx[:, 1], idx[:, 2], idx[:, 3], idx[:, 4]], dim=1).to(torch.int32)
        sites = SparseSites(coords.contiguous(), SpacetimeLayout(B, T), (X, Y, Z))
        return SparseTensor.from_sites(channels_last[mask], sites)

    def to_dense(self) -> Float[Tensor, "b t c x y z"]:
        """Scatter into a zero-filled ``[B, T, C, X, Y, Z]`` grid (differentiable w.r.t. feats)."""
        B, T = self.layout.batch_size, self.layout.num_frames
        X, Y, Z = self.spatial_shape
        c = self.coords.long()
        e = c[:, 0]
        index = (torch.div(e, T, rounding_mode="floor"), e % T, c[:, 1], c[:, 2], c[:, 3])
        grid = self.feats.new_zeros(B, T, X, Y, Z, self.num_channels)
        grid = grid.index_put(index, self.feats)
        return grid.permute(0, 1, 5, 2, 3, 4).contiguous()
