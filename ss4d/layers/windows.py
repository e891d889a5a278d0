"""Token partitions for attention: which tokens attend together (docs/design.md, "The blocks").

A :class:`TokenPartition` lists packed sequences (``cu_seqlens``) after an optional row permutation.
Windows are computed per sample and never cross samples; end windows are shorter (no wrap-around,
no padding): with ``window = w`` and shift ``s`` frame ``t`` is in window ``(t + s) // w``, and the same
rule with the spatial window on x, y, z for 4D windows.
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Int32, Int64
from torch import Tensor

from ss4d.ops.attention import seqlens_to_cu
from ss4d.ops.sparse import SparseTensor

__all__ = [
    "TokenPartition",
    "dense_temporal_partition",
    "frame_window_lengths",
    "sparse_entry_partition",
    "sparse_spacetime_window_partition",
    "sparse_temporal_partition",
]


@dataclass(frozen=True, eq=False)
class TokenPartition:
    """Rows ``perm`` (None = identity) form sequences ``cu_seqlens``: sequence ``i`` is rows
    ``perm[cu[i]:cu[i+1]]``."""

    cu_seqlens: Int32[Tensor, " s1"]
    perm: Int64[Tensor, " n"] | None = None

    @property
    def seqlens(self) -> list[int]:
        return self.cu_seqlens.diff().tolist()


def frame_window_lengths(num_frames: int, window: int | None, shift: int = 0) -> list[int]:
    """Frames per window for one sample: ``window=None`` = one window of all frames.

    Example: T=32, w=8, s=4 -> [4, 8, 8, 8, 4].
    """
    if window is None:
        return [num_frames]
    return _runs(num_frames, window, shift)


def _runs(num_frames: int, window: int, shift: int) -> list[int]:
    if window < 1 or shift < 0:
        raise ValueError(f"window must be >= 1 and shift >= 0, got window={window}, shift={shift}")
    ids = [(t + shift) // window for t in range(num_frames)]
    lengths: list[int] = []
    for i, wid in enumerate(ids):
        if i and wid == ids[i - 1]:
            lengths[-1] += 1
        else:
            lengths.append(1)
    return lengths


def dense_temporal_partition(
    batch_size: int, num_frames: int, tokens_per_frame: int, window: int | None, shift: int, device: torch.device
) -> TokenPartition:
    """Sequences over tokens laid out ``[B, T, M]`` (row-major): each window of frames of each sample."""
    per_sample = [n * tokens_per_frame for n in frame_window_lengths(num_frames, window, shift)]
    return TokenPartition(seqlens_to_cu(per_sample * batch_size, device))


def sparse_entry_partition(x: SparseTensor) -> TokenPartition:
    """One sequence per batch entry (per frame): spatial 3D attention."""
    return TokenPartition(x.sites.entry_offsets().to(torch.int32))


def sparse_temporal_partition(x: SparseTensor, window: int | None, shift: int) -> TokenPartition:
    """Windows of whole frames of each sample (rows of a window are contiguous: no permutation)."""

    def build() -> TokenPartition:
        T = x.layout.num_frames
        bounds, e = [0], 0
        for _ in range(x.layout.batch_size):
            for n in frame_window_lengths(T, window, shift):
                e += n
                bounds.append(e)
        offsets = x.sites.entry_offsets()
        return TokenPartition(offsets[torch.tensor(bounds, device=offsets.device)].to(torch.int32))

    return x.sites.memo(("temporal_partition", window, shift), build)


def sparse_spacetime_window_partition(
    x: SparseTensor, window: int, window_xyz: int, shift: int, shift_xyz: int
) -> TokenPartition:
    """4D windows of ``window`` frames x ``window_xyz``^3 voxels, shifted by ``shift`` / ``shift_xyz``.

    Windows are ordered by ``(sample, t-window, x-window, y-window, z-window)``; empty windows are dropped.
    """

    def build() -> TokenPartition:
        T = x.layout.num_frames
        c = x.coords.long()
        sample, frame = torch.div(c[:, 0], T, rounding_mode="floor"), c[:, 0] % T
        tw = torch.div(frame + shift, window, rounding_mode="floor")
        n_t = (T - 1 + shift) // window + 1
        key = sample * n_t + tw
        for axis in range(3):
            extent = x.spatial_shape[axis]
            n_a = (extent - 1 + shift_xyz) // window_xyz + 1
            key = key * n_a + torch.div(c[:, 1 + axis] + shift_xyz, window_xyz, rounding_mode="floor")
        if key.numel() and math.log2(max(int(key.max()), 1)) > 62:
            raise ValueError("window key overflow: grid too large")
        sorted_key, perm = torch.sort(key, stable=True)
        _, counts = torch.unique_consecutive(sorted_key, return_counts=True)
        return TokenPartition(seqlens_to_cu(counts, key.device), perm)

    return x.sites.memo(("spacetime_partition", window, window_xyz, shift, shift_xyz), build)
