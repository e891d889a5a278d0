"""Cameras (OpenCV convention: x right, y down, z forward; world -> camera extrinsics), in one place.

ss4d's world is z-up with the object in [-0.5, 0.5]^3 (docs/design.md, "Spacetime layout"). Intrinsics are
stored in pixels; :meth:`Camera.normalized_intrinsics` gives them divided by the image size.
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["Camera", "fov_to_focal", "look_at", "orbit_cameras", "orbit_view"]


def fov_to_focal(fov_degrees: float, size: int) -> float:
    """Focal length in pixels for a field of view (degrees) across ``size`` pixels."""
    return 0.5 * size / math.tan(math.radians(fov_degrees) / 2)


def look_at(
    eye: Float[Tensor, " 3"], target: Float[Tensor, " 3"], up: Float[Tensor, " 3"] | None = None
) -> Float[Tensor, "4 4"]:
    """World -> camera matrix of a camera at ``eye`` looking at ``target`` (OpenCV axes; default up +z)."""
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype) if up is None else up
    forward = torch.nn.functional.normalize(target - eye, dim=0)
    right = torch.linalg.cross(forward, up)
    if float(right.norm()) < 1e-8:
        raise ValueError("`up` is parallel to the viewing direction; pass another `up`")
    right = torch.nn.functional.normalize(right, dim=0)
    down = torch.linalg.cross(forward, right)
    rot = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    view = torch.eye(4, dtype=eye.dtype)
    view[:3, :3] = rot
    view[:3, 3] = -rot @ eye
    return view


def orbit_view(radius: float, azimuth: float, elevation: float) -> Float[Tensor, "4 4"]:
    """World -> camera matrix of a camera at (radius, azimuth, elevation) (radians, z-up) looking at the origin."""
    eye = torch.tensor(
        [
            radius * math.cos(elevation) * math.cos(azimuth),
            radius * math.cos(elevation) * math.sin(azimuth),
            radius * math.sin(elevation),
        ]
    )
    return look_at(eye, torch.zeros(3))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``viewmat`` world -> camera 4x4, focal lengths and principal point in pixels."""

    viewmat: Float[Tensor, "4 4"]
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, viewmat: Tensor, fov_degrees: float, width: int, height: int) -> "Camera":
        f = fov_to_focal(fov_degrees, width)
        return cls(viewmat, f, f, width / 2, height / 2, width, height)

    def normalized_intrinsics(self) -> Float[Tensor, "3 3"]:
        return torch.tensor(
            [
                [self.fx / self.width, 0, self.cx / self.width],
                [0, self.fy / self.height, self.cy / self.height],
                [0, 0, 1],
            ]
        )

    @property
    def position(self) -> Float[Tensor, " 3"]:
        rot, t = self.viewmat[:3, :3], self.viewmat[:3, 3]
        return -rot.T @ t


def orbit_cameras(
    num: int,
    *,
    radius: float = 2.0,
    elevation_degrees: float = 20.0,
    fov_degrees: float = 40.0,
    size: int = 256,
    start_degrees: float = 0.0,
) -> list[Camera]:
    """``num`` cameras on a circle around the origin (z-up), looking at it (TRELLIS renders: r 2, fov 40)."""
    cams = []
    el = math.radians(elevation_degrees)
    for i in range(num):
        az = math.radians(start_degrees) + 2 * math.pi * i / num
        cams.append(Camera.from_fov(orbit_view(radius, az, el), fov_degrees, size, size))
    return cams
