"""Surface-like sparse voxel sets for benchmarks: what SS4D convolves (few neighbours per voxel)."""

import math

import torch

from ss4d.ops.sparse import SpacetimeLayout, SparseTensor


def shell_voxels(num_voxels: int, *, num_frames: int = 1, channels: int = 64, seed: int = 0) -> SparseTensor:
    """A voxelised sphere shell per frame, drifting one voxel per frame, about ``num_voxels`` in all.

    The shell (one voxel thick) gives ~8 active 3^3 neighbours per voxel, like SS4D's surface latents;
    the drift makes about half of the temporal neighbours present.
    """
    per_frame = num_voxels / num_frames
    # a 1-voxel-thick shell of radius r has about 4*pi*r^2 * 1.1 voxels
    radius = math.sqrt(per_frame / (4 * math.pi * 1.1))
    side = int(2 * radius + 4 + num_frames)
    g = torch.Generator().manual_seed(seed)
    axis = torch.arange(side, dtype=torch.float32)
    gx, gy, gz = torch.meshgrid(axis, axis, axis, indexing="ij")
    coords = []
    for t in range(num_frames):
        cx = radius + 2 + t
        c = side / 2
        dist = ((gx - cx) ** 2 + (gy - c) ** 2 + (gz - c) ** 2).sqrt()
        xyz = torch.nonzero((dist - radius).abs() < 0.55)
        coords.append(torch.cat([torch.full((len(xyz), 1), t), xyz], dim=1))
    all_coords = torch.cat(coords).int()
    feats = torch.randn(len(all_coords), channels, generator=g)
    return SparseTensor(feats, all_coords, SpacetimeLayout(1, num_frames), spatial_shape=(side, side, side))


def uniform_voxels(num_voxels: int, *, num_frames: int = 1, channels: int = 64, seed: int = 0) -> SparseTensor:
    """``num_voxels`` random distinct voxels per the whole clip in a grid with ~5 % occupancy.

    Few neighbours per voxel (about 1.3 in a 3^3 kernel): the case where kernel-map building and memory
    traffic dominate (the "uniform" workload of README "Sparse-convolution backends").
    """
    side = max(4, round((num_voxels / num_frames / 0.05) ** (1 / 3)))
    g = torch.Generator().manual_seed(seed)
    flat = torch.randperm(num_frames * side**3, generator=g)[:num_voxels]
    e, rest = flat // side**3, flat % side**3
    coords = torch.stack([e, rest // side**2, (rest // side) % side, rest % side], dim=1).int()
    feats = torch.randn(len(coords), channels, generator=g)
    return SparseTensor(feats, coords, SpacetimeLayout(1, num_frames), spatial_shape=(side, side, side))


DISTRIBUTIONS = {"shell": shell_voxels, "uniform": uniform_voxels}
