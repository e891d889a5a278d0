"""A tiny random-weight SS4D pipeline and a synthetic clip, for fast end-to-end tests."""

import math

import torch

from ss4d.pipelines.presets import build_tiny_pipeline


def tiny_pipeline(seed: int = 0):
    return build_tiny_pipeline(seed=seed)


def moving_disc_clip(T: int = 8, size: int = 48, alpha: bool = True) -> torch.Tensor:
    """RGBA (or RGB on white) frames of a coloured disc moving left to right."""
    frames = []
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for t in range(T):
        cx = size * (0.3 + 0.4 * t / max(T - 1, 1))
        cy = size * (0.5 + 0.1 * math.sin(t))
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < (size * 0.18) ** 2).float()
        rgb = torch.stack([0.9 * inside, 0.3 + 0.4 * inside * (yy / size), 0.2 * inside])
        if alpha:
            frames.append(torch.cat([rgb, inside[None]]))
        else:
            frames.append(rgb * inside + (1 - inside))
    return torch.stack(frames)
