"""Rendering: cameras and a differentiable pure-PyTorch Gaussian rasteriser."""

from ss4d.render.camera import Camera, fov_to_focal, look_at, orbit_cameras, orbit_view
from ss4d.render.rasterize import RenderOutput, project_gaussians, rasterize, render_backends, render_gaussians

__all__ = [
    "Camera",
    "RenderOutput",
    "fov_to_focal",
    "look_at",
    "orbit_cameras",
    "orbit_view",
    "project_gaussians",
    "rasterize",
    "render_backends",
    "render_gaussians",
]
