"""Meshes of a 4D result: one GLB per frame, by marching cubes on the Gaussians' density.

The density of a frame is ``D(x) = sum_i o_i exp(-0.5 (x - mu_i)^T Sigma_i^-1 (x - mu_i))`` (activated opacities,
means and covariances of the decoded Gaussians), sampled on a ``resolution^3`` grid over the object's cube
``[-0.5, 0.5]^3`` padded by ``PAD`` (each Gaussian within 3 standard deviations of its largest axis, at most
``MAX_REACH`` cells). The surface is the ``level`` set of ``D`` (scikit-image's marching cubes), Taubin-smoothed
(trimesh, keeps the volume), with vertex colours ``C(x) / D(x)``, ``C`` the same sum weighted by each Gaussian's
colour ``0.28209479 f_dc + 0.5``, read trilinearly at the vertices. Meshes are written y-up like ss4d's PLYs;
``animated.glb`` optionally holds the whole sequence as one animation.
Needs ``pip install 'ss4d[mesh]'`` (scikit-image, trimesh).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.errors import InputError
from ss4d.export._atomic import write_atomic
from ss4d.export.gltf_animation import animated_glb_bytes
from ss4d.ops._optional import require
from ss4d.representations import Gaussians, quaternion_to_matrix
from ss4d.representations.io import _Y_UP

__all__ = ["MeshStats", "density_grid", "gaussians_to_mesh", "save_mesh_sequence"]

PAD = 0.05
MAX_REACH = 8
SH_C0 = 0.28209479
ANIMATED_NAME = "animated.glb"
MESH_HINT = "meshes need scikit-image and trimesh: pip install 'ss4d[mesh]'"


@dataclass(frozen=True)
class MeshStats:
    path: Path
    vertices: int
    triangles: int
    seconds: float


def density_grid(
    g: Gaussians, resolution: int = 64, *, chunk: int = 2048
) -> tuple[Float[Tensor, "r r r"], Float[Tensor, "r r r 3"]]:
    """``D`` and the colour-weighted ``C`` on cell centres of the padded cube (see the module docstring)."""
    with torch.no_grad():
        g = g.to("cpu", torch.float32)
        lo, cell = -0.5 - PAD, (1 + 2 * PAD) / resolution
        mu, op = g.xyz, g.opacity[:, 0]
        rgb = (SH_C0 * g.features[:, 0] + 0.5).clamp(0, 1)
        R = quaternion_to_matrix(g.rotation)
        inv = R @ torch.diag_embed(g.scaling.pow(-2)) @ R.transpose(1, 2)
        reach = (3 * g.scaling.max(1).values / cell).ceil().clamp(1, MAX_REACH).long()
        centre = ((mu - lo) / cell - 0.5).round().long()
        density = torch.zeros(resolution**3)
        colour = torch.zeros(resolution**3, 3)
        for h in reach.unique().tolist():
            r = torch.arange(-h, h + 1)
            offsets = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
            for idx in torch.nonzero(reach == h).squeeze(1).split(chunk):
                cells = centre[idx, None] + offsets  # [m, k, 3]
                d = (cells.float() + 0.5) * cell + lo - mu[idx, None]
                w = op[idx, None] * torch.exp(-0.5 * torch.einsum("mki,mij,mkj->mk", d, inv[idx], d))
                inside = ((cells >= 0) & (cells < resolution)).all(-1)
                flat = (cells[..., 0] * resolution + cells[..., 1]) * resolution + cells[..., 2]
                w, flat = w[inside], flat[inside]
                density.index_add_(0, flat, w)
                colour.index_add_(0, flat, w[:, None] * rgb[idx, None].expand(-1, offsets.shape[0], -1)[inside])
    return density.view((resolution,) * 3), colour.view((resolution,) * 3 + (3,))


def gaussians_to_mesh(g: Gaussians, *, resolution: int = 64, level: float = 0.5, smooth: int = 10, up: str = "y"):
    """A ``trimesh.Trimesh`` with vertex colours (see the module docstring).

    Raises:
        ValueError: the density never reaches ``level`` (no surface; lower ``level``).
    """
    measure = require("skimage.measure", hint=MESH_HINT)
    trimesh = require("trimesh", hint=MESH_HINT)
    ndimage = require("scipy.ndimage", hint=MESH_HINT)
    if up not in ("y", "z"):
        raise InputError(f"`up` must be 'y' or 'z', got {up!r}")
    if not 8 <= resolution <= 512 or smooth < 0:
        raise InputError(f"mesh `resolution` must be in 8..512 and `smooth` >= 0, got {resolution} and {smooth}")
    density, colour = density_grid(g, resolution)
    d = density.numpy()
    if not d.min() < level < d.max():
        raise InputError(f"the density ranges {d.min():.3g}..{d.max():.3g}: no surface at level {level}; "
                         "pass a lower --level")  # fmt: skip
    cell = (1 + 2 * PAD) / resolution
    verts, faces, _, _ = measure.marching_cubes(d, level=level, gradient_direction="ascent")  # outward normals
    mesh = trimesh.Trimesh(verts * cell + (-0.5 - PAD + 0.5 * cell), faces, process=True)
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, iterations=smooth)
    grid = (mesh.vertices - (-0.5 - PAD + 0.5 * cell)) / cell  # back to grid index space for the colour lookup
    wsum = ndimage.map_coordinates(d, grid.T, order=1, mode="nearest")
    rgb = np.stack(
        [ndimage.map_coordinates(colour[..., c].numpy(), grid.T, order=1, mode="nearest") for c in range(3)], 1
    )
    rgb = np.clip(rgb / np.maximum(wsum, 1e-8)[:, None], 0, 1)
    mesh.visual.vertex_colors = np.concatenate([np.round(rgb * 255), np.full((len(rgb), 1), 255)], 1).astype(np.uint8)
    if up == "y":
        mesh.apply_transform(np.block([[_Y_UP, np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
    return mesh


def save_mesh_sequence(
    frames: Sequence[Gaussians],
    folder: str | Path,
    *,
    resolution: int = 64,
    level: float = 0.5,
    smooth: int = 10,
    animated_fps: float | None = None,
) -> list[MeshStats]:
    """``folder/frame_0000.glb`` ... one per frame; returns vertex / triangle counts and seconds per frame.

    With ``animated_fps`` also ``folder/animated.glb``: every frame in one file, played at that rate
    (:mod:`ss4d.export.gltf_animation`).
    """
    stats, meshes = [], []
    for i, g in enumerate(frames):
        start = time.perf_counter()
        mesh = gaussians_to_mesh(g, resolution=resolution, level=level, smooth=smooth)
        data = mesh.export(file_type="glb")
        path = write_atomic(Path(folder) / f"frame_{i:04d}.glb", lambda tmp, data=data: tmp.write_bytes(data))
        stats.append(MeshStats(path, len(mesh.vertices), len(mesh.faces), time.perf_counter() - start))
        if animated_fps is not None:
            meshes.append(mesh)
    if animated_fps is not None:
        data = animated_glb_bytes(meshes, animated_fps)
        write_atomic(Path(folder) / ANIMATED_NAME, lambda tmp: tmp.write_bytes(data))
    return stats
