"""Kernel maps by coordinate hashing: which input row feeds which output row through which kernel offset.

The hash table of a :class:`SparseSites` is its sorted linear keys (``torch.sort`` once, then
``torch.searchsorted`` per query), so this runs anywhere torch runs. Maps are memoised on the input
sites: a stack of convolutions over one coordinate set builds each map once.

Kernel offsets are enumerated in C order over ``(kt, kx, ky, kz)`` (t slowest, z fastest); this is the
first axis of ss4d's weight layout ``[K, c_in, c_out]`` (see :mod:`ss4d.ops.sparse.weights`).
"""

import itertools
from dataclasses import dataclass

import torch
from jaxtyping import Int32, Int64
from torch import Tensor

from ss4d.ops.sparse.layout import SpacetimeLayout
from ss4d.ops.sparse.sites import SparseSites, linear_keys

__all__ = [
    "ConvMap",
    "KernelMap",
    "KernelSize",
    "kernel_offsets",
    "normalize_kernel_size",
    "pool_sites",
    "strided_conv_map",
    "submanifold_kernel_map",
    "unravel_keys",
]

KernelSize = tuple[int, int, int, int]
"""Kernel extent over ``(t, x, y, z)``; a 3D kernel has ``kt == 1``."""


def normalize_kernel_size(kernel_size: int | tuple[int, ...]) -> KernelSize:
    """``3 -> (1, 3, 3, 3)``; ``(3, 3, 3) -> (1, 3, 3, 3)``; a 4-tuple is ``(kt, kx, ky, kz)``."""
    if isinstance(kernel_size, int):
        ks: tuple[int, ...] = (1, kernel_size, kernel_size, kernel_size)
    else:
        ks = tuple(int(k) for k in kernel_size)
        if len(ks) == 3:
            ks = (1, *ks)
    if len(ks) != 4 or min(ks) < 1:
        raise ValueError(
            f"`kernel_size` must be an int, 3 ints (x, y, z) or 4 ints (t, x, y, z) >= 1; got {kernel_size!r}"
        )
    return ks  # type: ignore[return-value]


def kernel_offsets(kernel_size: KernelSize, *, centered: bool, dilation: int = 1) -> list[tuple[int, int, int, int]]:
    """Offsets in weight order. ``centered``: ``(j - k // 2) * dilation`` (odd kernels); else ``j``."""
    ranges = [[((j - k // 2) * dilation if centered else j) for j in range(k)] for k in kernel_size]
    return list(itertools.product(*ranges))


@dataclass(frozen=True, eq=False)
class KernelMap:
    """Gather-GEMM-scatter pairs: for offset ``k``, ``out[out_idx[s_k]] += in[in_idx[s_k]] @ W[k]``.

    Pairs are stored offset by offset (``counts[k]`` pairs each). ``identity_offset`` is the offset whose
    pairs are ``i -> i`` for every row (the centre of a submanifold kernel); its pairs are not stored
    because a dense GEMM does it.
    """

    kernel_volume: int
    in_idx: Int64[Tensor, " p"]
    out_idx: Int64[Tensor, " p"]
    counts: tuple[int, ...]
    identity_offset: int | None
    num_in: int
    num_out: int

    def segments(self) -> list[tuple[int, Tensor, Tensor]]:
        """``(offset, in_idx, out_idx)`` for every offset with at least one stored pair."""
        ins = torch.split(self.in_idx, list(self.counts))
        outs = torch.split(self.out_idx, list(self.counts))
        return [(k, i, o) for k, (i, o, n) in enumerate(zip(ins, outs, self.counts, strict=True)) if n]

    @property
    def num_pairs(self) -> int:
        """All input-output pairs, the identity ones included."""
        return int(self.in_idx.numel()) + (self.num_out if self.identity_offset is not None else 0)

    def transposed(self) -> "KernelMap":
        """The same pairs read the other way (inverse convolution)."""
        if self.identity_offset is not None:
            raise ValueError("a submanifold map is its own transpose up to the kernel flip; not needed")
        return KernelMap(self.kernel_volume, self.out_idx, self.in_idx, self.counts, None, self.num_out, self.num_in)


def submanifold_kernel_map(sites: SparseSites, kernel_size: KernelSize, dilation: int = 1) -> KernelMap:
    """Pairs of a submanifold conv on ``sites`` (memoised): output rows = input rows.

    ``out[p] = sum_k W[k] x[p + offset_k]``; temporal offsets stay inside the sample (frames -1 and T do
    not exist, i.e. zero padding), spatial offsets stay inside the grid.

    Raises:
        ValueError: an even kernel extent (a submanifold kernel needs a centre).
    """
    if any(k % 2 == 0 for k in kernel_size):
        raise ValueError(f"submanifold convolution needs odd kernel extents, got {kernel_size}")
    return sites.memo(("subm", kernel_size, dilation), lambda: _build_submanifold(sites, kernel_size, dilation))


def _build_submanifold(sites: SparseSites, kernel_size: KernelSize, dilation: int) -> KernelMap:
    offsets = kernel_offsets(kernel_size, centered=True, dilation=dilation)
    K, n, device = len(offsets), sites.num_voxels, sites.device
    centre = K // 2  # odd extents in C order: the zero offset is the middle one
    # Keys over a grid padded by the kernel radius on every axis (time padded per sample), so a neighbour
    # key is `key + delta` and an out-of-range neighbour lands in a padding cell that is never active.
    B, T = sites.layout.batch_size, sites.layout.num_frames
    radius = [k // 2 * dilation for k in kernel_size]
    dims = [T + 2 * radius[0]] + [s + 2 * r for s, r in zip(sites.spatial_shape, radius[1:], strict=True)]
    c = sites.coords.long()
    sample = torch.div(c[:, 0], T, rounding_mode="floor")
    key = sample
    for axis, (coordinate, r) in enumerate(zip([c[:, 0] % T, c[:, 1], c[:, 2], c[:, 3]], radius, strict=True)):
        key = key * dims[axis] + coordinate + r
    strides = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1]
    # Offsets before the centre are looked up; those after it are their mirror images (pairs swapped).
    delta = torch.tensor(
        [sum(o * s for o, s in zip(off, strides, strict=True)) for off in offsets[:centre]],
        dtype=torch.long,
        device=device,
    )
    found = _lookup(key, key[None, :] + delta[:, None], volume=B * dims[0] * dims[1] * dims[2] * dims[3])
    hit = found >= 0
    half_k, out_rows = hit.nonzero(as_tuple=True)
    in_rows = found[half_k, out_rows]
    half_counts = hit.sum(dim=1).tolist()
    ins, outs = torch.split(in_rows, half_counts), torch.split(out_rows, half_counts)
    in_parts = list(ins) + [outs[centre - 1 - j] for j in range(centre)]
    out_parts = list(outs) + [ins[centre - 1 - j] for j in range(centre)]
    counts = half_counts + [0] + half_counts[::-1]
    return KernelMap(
        kernel_volume=K,
        in_idx=torch.cat(in_parts) if in_parts else torch.zeros(0, dtype=torch.long, device=device),
        out_idx=torch.cat(out_parts) if out_parts else torch.zeros(0, dtype=torch.long, device=device),
        counts=tuple(counts),
        identity_offset=centre,
        num_in=n,
        num_out=n,
    )


_TABLE_MAX_CELLS = 1 << 24  # direct-address table limit (64 MB of int32)


def _lookup(keys: Int64[Tensor, " n"], query: Int64[Tensor, "q n"], *, volume: int) -> Int64[Tensor, "q n"]:
    """Row of each query key in ``keys`` (distinct, all in ``[0, volume)``), or -1; queries are in range too.

    Small grids use a direct-address table (one gather per query); larger ones binary-search the sorted keys.
    """
    n = keys.numel()
    if n == 0:
        return torch.full_like(query, -1)
    if volume <= min(_TABLE_MAX_CELLS, max(4 * query.numel(), 1 << 16)):
        table = torch.full((volume,), -1, dtype=torch.long, device=keys.device)
        table[keys] = torch.arange(n, device=keys.device)
        return table[query]
    sorted_keys, perm = torch.sort(keys)
    pos = torch.searchsorted(sorted_keys, query).clamp_(max=n - 1)
    return torch.where(sorted_keys[pos] == query, perm[pos], -1)


@dataclass(frozen=True, eq=False)
class ConvMap:
    """A strided (down-sampling) spatial convolution from ``fine`` to ``coarse`` sites, and its inverse.

    ``pairs`` reads fine rows and writes coarse rows; the inverse convolution reads them the other way and
    writes exactly the cached fine sites (same rows, same order).
    """

    fine: SparseSites
    coarse: SparseSites
    kernel_size: tuple[int, int, int]
    stride: int
    padding: int
    pairs: KernelMap


def strided_conv_map(sites: SparseSites, kernel_size: KernelSize, stride: int, padding: int) -> ConvMap:
    """Map of a regular (non-submanifold) spatial conv with ``stride`` and ``padding`` (memoised).

    As ``F.conv3d``: coarse voxel ``o`` reads fine voxels ``o * stride - padding + j`` for
    ``j in [0, k)``; a coarse voxel is active when at least one of them is. The coarse grid shape is
    ``(S + 2 * padding - k) // stride + 1``; coarse rows are sorted by ``(entry, x, y, z)``.

    Raises:
        ValueError: a temporal kernel extent (strided convs are per frame), or stride/padding < 0.
    """
    if kernel_size[0] != 1:
        raise ValueError(f"strided convolution is spatial (per frame); got a temporal extent {kernel_size[0]}")
    if stride < 1 or padding < 0:
        raise ValueError(f"need stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    key = ("strided", kernel_size, stride, padding)
    return sites.memo(key, lambda: _build_strided(sites, kernel_size, stride, padding))


def _build_strided(sites: SparseSites, kernel_size: KernelSize, stride: int, padding: int) -> ConvMap:
    ks = kernel_size[1:]
    out_shape = tuple((s + 2 * padding - k) // stride + 1 for s, k in zip(sites.spatial_shape, ks, strict=True))
    if min(out_shape) < 1:
        raise ValueError(f"kernel {ks} with padding {padding} does not fit the grid {sites.spatial_shape}")
    offsets = kernel_offsets(kernel_size, centered=False)
    device, n = sites.device, sites.num_voxels
    c = sites.coords.long()
    off = torch.tensor(offsets, device=device, dtype=torch.long)[:, 1:]  # [K, 3]
    num = c[None, :, 1:] + padding - off[:, None, :]  # [K, n, 3] = o * stride
    o = torch.div(num, stride, rounding_mode="floor")
    limit = torch.tensor(out_shape, device=device)
    valid = ((num % stride) == 0).all(-1) & (num >= 0).all(-1) & (o < limit).all(-1)  # [K, n]
    cand = torch.cat([c[None, :, :1].expand(len(offsets), n, 1), o], dim=-1)[valid]  # [P, 4]
    keys = linear_keys(cand, sites.layout.num_entries, out_shape)  # type: ignore[arg-type]
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    coarse_coords = unravel_keys(uniq, out_shape)  # type: ignore[arg-type]
    coarse = SparseSites(coarse_coords, sites.layout, out_shape)  # type: ignore[arg-type]
    rows = torch.arange(n, device=device).expand(len(offsets), n)[valid]
    counts = tuple(int(v) for v in valid.sum(dim=1).tolist())
    pairs = KernelMap(len(offsets), rows, inverse.long(), counts, None, n, coarse.num_voxels)
    return ConvMap(sites, coarse, ks, stride, padding, pairs)  # type: ignore[arg-type]


def unravel_keys(keys: Int64[Tensor, " n"], spatial_shape: tuple[int, int, int]) -> Int32[Tensor, "n 4"]:
    """Inverse of :func:`~ss4d.ops.sparse.sites.linear_keys`: int32 ``(entry, x, y, z)`` rows."""
    sx, sy, sz = spatial_shape
    z = keys % sz
    rest = torch.div(keys, sz, rounding_mode="floor")
    y = rest % sy
    rest = torch.div(rest, sy, rounding_mode="floor")
    x = rest % sx
    e = torch.div(rest, sx, rounding_mode="floor")
    return torch.stack([e, x, y, z], dim=1).to(torch.int32).contiguous()


def pool_sites(
    coarse_coords: Int64[Tensor, "n 4"], layout: SpacetimeLayout, spatial_shape: tuple[int, int, int]
) -> tuple[SparseSites, Int64[Tensor, " n"], Int64[Tensor, " m"]]:
    """Group rows whose ``coarse_coords`` coincide: ``(coarse sites sorted by key, parent of each row, counts)``."""
    keys = linear_keys(coarse_coords, layout.num_entries, spatial_shape)  # type: ignore[arg-type]
    uniq, parent, counts = torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)
    coarse = SparseSites(unravel_keys(uniq, spatial_shape), layout, spatial_shape)
    return coarse, parent.long(), counts
