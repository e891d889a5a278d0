"""Random sparse tensors and dense references for the sparse-op tests."""

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, sparse_conv_backends
from ss4d.ops.sparse.weights import weight_to_dense

BACKENDS = sparse_conv_backends.names()  # every registered backend, so a new one cannot escape


def backend_params():
    import pytest

    params = []
    for name in BACKENDS:
        backend = sparse_conv_backends.get(name)
        reason = backend.unavailable_reason(torch.device("cpu"))
        params.append(pytest.param(name, marks=pytest.mark.skipif(bool(reason), reason=f"{name}: {reason}")))
    return params


def random_sparse(
    seed: int,
    *,
    batch_size: int = 1,
    num_frames: int = 1,
    shape: tuple[int, int, int] = (5, 5, 5),
    density: float = 0.3,
    channels: int = 4,
    shuffle: bool = False,
) -> SparseTensor:
    g = torch.Generator().manual_seed(seed)
    E = batch_size * num_frames
    X, Y, Z = shape
    occupied = torch.rand(E, X, Y, Z, generator=g) < density
    idx = torch.nonzero(occupied)
    if shuffle and len(idx) > 1:
        idx = idx[torch.randperm(len(idx), generator=g)]
    feats = torch.randn(len(idx), channels, generator=g)
    return SparseTensor(feats, idx.int(), SpacetimeLayout(batch_size, num_frames), spatial_shape=shape)


@st.composite
def sparse_tensors(draw, *, max_frames: int = 8, max_side: int = 6, max_channels: int = 64):
    return random_sparse(
        draw(st.integers(0, 2**31 - 1)),
        batch_size=draw(st.integers(1, 2)),
        num_frames=draw(st.integers(1, max_frames)),
        shape=tuple(draw(st.integers(1, max_side)) for _ in range(3)),
        density=draw(st.sampled_from([0.0, 0.05, 0.3, 1.0])),
        channels=draw(st.integers(1, max_channels)),
    )


def gather_sites(dense: torch.Tensor, x: SparseTensor) -> torch.Tensor:
    """Read ``[B, T, C, X, Y, Z]`` at ``x``'s sites -> ``[n, C]``."""
    c = x.coords.long()
    T = x.layout.num_frames
    return dense[c[:, 0] // T, c[:, 0] % T, :, c[:, 1], c[:, 2], c[:, 3]]


def dense_subm_reference(x: SparseTensor, weight: torch.Tensor, kernel_size, dilation: int = 1) -> torch.Tensor:
    """Submanifold conv by an explicit loop over temporal taps of dense ``F.conv3d``, read at the sites."""
    kt = kernel_size[0]
    w = weight_to_dense(weight, kernel_size)  # [co, ci, (kt,) kx, ky, kz]
    if w.ndim == 5:
        w = w.unsqueeze(2)
    dense = x.to_dense()  # [B, T, C, X, Y, Z]
    B, T = dense.shape[:2]
    pad = [k // 2 * dilation for k in kernel_size[1:]]
    out = None
    for j in range(kt):
        dt = (j - kt // 2) * dilation
        shifted = torch.zeros_like(dense)
        lo, hi = max(0, -dt), min(T, T - dt)
        if lo < hi:
            shifted[:, lo:hi] = dense[:, lo + dt : hi + dt]
        y = F.conv3d(shifted.flatten(0, 1), w[:, :, j], padding=pad, dilation=dilation)
        out = y if out is None else out + y
    out = out.unflatten(0, (B, T))
    return gather_sites(out, x)


def dense_strided_reference(x: SparseTensor, weight, kernel_size, stride, padding, coarse: SparseTensor):
    w = weight_to_dense(weight, kernel_size)
    dense = x.to_dense()
    B, T = dense.shape[:2]
    out = F.conv3d(dense.flatten(0, 1), w, stride=stride, padding=padding).unflatten(0, (B, T))
    return gather_sites(out, coarse)


def dense_active_outputs(x: SparseTensor, kernel_size, stride, padding) -> set[tuple[int, ...]]:
    """Coarse voxels whose receptive field holds an active fine voxel (by dense conv of the occupancy)."""
    occ = torch.zeros(x.layout.num_entries, 1, *x.spatial_shape, dtype=torch.float64)
    c = x.coords.long()
    occ[c[:, 0], 0, c[:, 1], c[:, 2], c[:, 3]] = 1
    hit = F.conv3d(occ, torch.ones(1, 1, *kernel_size[1:], dtype=torch.float64), stride=stride, padding=padding)
    return {tuple(r) for r in torch.nonzero(hit[:, 0] > 0).tolist()}


def dense_inverse_reference(y: SparseTensor, weight, kernel_size, stride, padding, fine: SparseTensor):
    w = weight_to_dense(weight, kernel_size).transpose(0, 1)  # [c_coarse, c_fine, k...]
    dense = y.to_dense()
    B, T = dense.shape[:2]
    fine_shape = fine.spatial_shape
    ks = kernel_size[1:]
    out_pad = [
        f - ((c - 1) * stride - 2 * padding + k) for f, c, k in zip(fine_shape, y.spatial_shape, ks, strict=True)
    ]
    out = F.conv_transpose3d(dense.flatten(0, 1), w, stride=stride, padding=padding, output_padding=out_pad)
    return gather_sites(out.unflatten(0, (B, T)), fine)
