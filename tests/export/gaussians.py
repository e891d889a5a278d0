"""Small Gaussian frames for the export and viewer tests."""

import math

import torch

from ss4d.representations import Gaussians


def random_gaussians(n: int = 300, seed: int = 0, *, spread: float = 0.3) -> Gaussians:
    """``n`` Gaussians with varied positions, sizes, rotations, colours and opacities."""
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        0.5 + spread * (torch.rand(n, 3, generator=g) - 0.5) * 2,
        torch.randn(n, 1, 3, generator=g),
        torch.randn(n, 3, generator=g) * 0.5 + 2.0,
        torch.randn(n, 4, generator=g) * 0.3,
        torch.randn(n, 1, generator=g) * 2 + 1,
    )


def ball_of_gaussians(radius: float = 0.25, spacing: float = 0.04, rgb=(0.8, 0.3, 0.1)) -> Gaussians:
    """Opaque isotropic Gaussians filling a ball around the origin, all of one colour."""
    r = torch.arange(-radius, radius + 1e-6, spacing)
    xyz = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    xyz = xyz[xyz.norm(dim=1) <= radius]
    n = xyz.shape[0]
    raw_scale = math.log(math.expm1(spacing * 0.6)) - math.log(math.expm1(0.004))  # activated std ~ 0.6 spacing
    dc = (torch.tensor(rgb) - 0.5) / 0.28209479
    return Gaussians(
        xyz + 0.5, dc.expand(n, 1, 3).clone(), torch.full((n, 3), raw_scale), torch.zeros(n, 4),
        torch.full((n, 1), 6.0),
    )  # fmt: skip
