"""Preview videos: input frame | novel view of the Gaussians (orbiting) | voxel structure."""

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int32
from torch import Tensor

from ss4d.render.camera import Camera, orbit_view
from ss4d.render.rasterize import project_gaussians, rasterize, render_gaussians
from ss4d.representations import Gaussians

__all__ = ["orbit_camera", "render_preview", "render_voxels"]


def orbit_camera(frame: int, num_frames: int, *, size: int, radius: float = 2.0, elevation: float = 20.0,
                 fov: float = 40.0, sweep: float = 90.0) -> Camera:  # fmt: skip
    """A camera that sweeps ``sweep`` degrees of azimuth over the clip (z-up world)."""
    az = math.radians(-45 + sweep * frame / max(num_frames - 1, 1))
    el = math.radians(elevation)
    return Camera.from_fov(orbit_view(radius, az, el), fov, size, size)


def render_voxels(coords: Int32[Tensor, "n 3"], resolution: int, camera: Camera) -> Float[Tensor, "h w 3"]:
    """Voxels as small isotropic splats, shaded by height (a structure preview)."""
    if coords.shape[0] == 0:
        return torch.ones(camera.height, camera.width, 3)
    centres = (coords.float() + 0.5) / resolution - 0.5
    n = centres.shape[0]
    height = (centres[:, 2:3] + 0.5).clamp(0, 1)
    colors = torch.cat([0.35 + 0.5 * height, 0.45 + 0.3 * height, 0.8 - 0.4 * height], dim=1)
    proj = project_gaussians(
        centres, torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4), torch.full((n, 3), 0.6 / resolution),
        torch.full((n,), 0.9), colors, camera,
    )  # fmt: skip
    return rasterize(proj, camera.width, camera.height, background=torch.ones(3)).color


def render_preview(
    gaussians: list[Gaussians],
    coords: list[Tensor],
    images: Float[Tensor, "t 3 s s"],
    resolution: int,
    *,
    size: int = 192,
) -> Float[Tensor, "t 3 h w"]:
    """One row per frame: the preprocessed input, the Gaussians from an orbiting camera, the voxels."""
    rows = []
    T = len(gaussians)
    with torch.no_grad():
        for t in range(T):
            cam = orbit_camera(t, T, size=size)
            view = render_gaussians(gaussians[t].to("cpu", torch.float32), cam, background=torch.ones(3)).color
            structure = render_voxels(coords[t].cpu(), resolution, cam)
            inp = F.interpolate(images[t : t + 1].float().cpu(), size=(size, size), mode="bilinear", antialias=True)[0]
            rows.append(torch.cat([inp, view.permute(2, 0, 1), structure.permute(2, 0, 1)], dim=2))
    return torch.stack(rows).clamp(0, 1)
