"""Trivial and oracle predictions that every evaluation reports next to a model (same clips, same views).

* ``empty``: background only (no Gaussian): the score of predicting nothing.
* ``grey_gt_occupancy``: one grey Gaussian on every ground-truth voxel: the right shape, no appearance.
* ``coloured_gt_occupancy``: the same Gaussians coloured from the ground-truth views (each voxel's colour is the
  alpha-weighted mean of the views' pixels where it is visible, z-buffer visibility as ``ss4d data import``).
* ``slat_vae_oracle``: ground-truth voxel features -> SLat encoder -> the pipeline's Gaussian decoder: the SLat
  VAE's reconstruction ceiling (needs the SLat encoder, which a pipeline folder does not hold);
* ``structure_vae_oracle``: ground-truth occupancy -> structure encoder -> the pipeline's structure decoder: the
  structure VAE's reconstruction ceiling on IoU (needs the structure encoder).

Both encoders can be refit against a pipeline's frozen decoders with :mod:`ss4d.training.refit`.

A Gaussian on a voxel is isotropic with standard deviation a quarter of a voxel and opacity 0.95: small
enough that the baseline is not blurred much beyond the voxels' extent, large enough that neighbouring voxels'
Gaussians still close the surface (at 16^3 and 64 px, std 0.5 / 0.35 / 0.25 voxel gave 8.7-9.4 / 9.9-10.4 /
10.0-11.8 dB on the four views of held-out clip 100000, frame 3: the occupancy shell is thicker than thin
parts, so wider Gaussians only fatten it).
"""

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ss4d.data.rendered import _depth_maps
from ss4d.data.synthetic import SyntheticClip, aggregate_features, occupancy_grid, voxel_batch
from ss4d.representations import GaussianActivation, Gaussians

__all__ = ["gaussians_on_voxels", "gt_voxel_colours", "slat_vae_oracle", "structure_vae_oracle"]

_GREY = 0.5
_SH_C0 = 0.28209479


def gaussians_on_voxels(xyz: Int[Tensor, "n 3"], resolution: int, colours: Float[Tensor, "n 3"] | None = None,
                        *, sigma: float = 0.25, opacity: float = 0.95) -> Gaussians:  # fmt: skip
    """One isotropic Gaussian (std = ``sigma`` voxels) at each voxel centre of a ``resolution^3`` grid over
    ``[-0.5, 0.5]^3``; ``colours`` in [0, 1] (default grey)."""
    act = GaussianActivation()
    n = xyz.shape[0]
    if colours is None:
        colours = torch.full((n, 3), _GREY)
    std = sigma / resolution
    raw_scale = act.raw_scaling(torch.tensor(std, dtype=torch.float64)).item()
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    return Gaussians(
        _xyz=(xyz.float() + 0.5) / resolution,  # the activation maps [0, 1] onto the aabb [-0.5, 0.5]
        _features_dc=((colours.float() - 0.5) / _SH_C0)[:, None],
        _scaling=torch.full((n, 3), raw_scale),
        _rotation=torch.zeros(n, 4),
        _opacity=torch.full((n, 1), logit(opacity) - logit(act.opacity_bias)),
        activation=act,
    )


def gt_voxel_colours(clip: SyntheticClip, t: int) -> Float[Tensor, "n 3"]:
    """Colour of every ground-truth voxel of frame ``t`` (rows in ``clip.coords`` order) from the clip's views:
    alpha-weighted mean over the views where the voxel is visible (grey where no view sees any of it)."""
    R = int(clip.meta["resolution"])
    xyz = clip.coords[clip.coords[:, 0] == t, 1:]
    centres = (xyz.float() + 0.5) / R - 0.5
    views = clip.views[t].float() / 255  # [V, 4, S, S]
    size = views.shape[-1]
    maps = torch.cat([views[:, :3] * views[:, 3:4], views[:, 3:4]], 1)  # premultiplied rgb | alpha
    depths = _depth_maps(centres, clip.viewmats[t], clip.focal, size, 1.0 / R)
    feats, _ = aggregate_features(centres, clip.viewmats[t], maps, depths, clip.focal, size, 1.5 / R, "visible")
    alpha = feats[:, 3:4]
    return torch.where(alpha > 1e-3, feats[:, :3] / alpha.clamp_min(1e-3), torch.full_like(feats[:, :3], _GREY))


@torch.no_grad()
def slat_vae_oracle(encoder: torch.nn.Module, decoder: torch.nn.Module, clip: SyntheticClip) -> list[Gaussians]:
    """Decode the SLat encoder's posterior mean of the clip's ground-truth voxel features (all frames)."""
    voxels = voxel_batch(clip, int(clip.meta["num_frames"]))
    p = next(decoder.parameters())
    _, mean, _ = encoder(voxels.to(p.device))
    return [g.to("cpu") for g in decoder(mean)]


@torch.no_grad()
def structure_vae_oracle(encoder: torch.nn.Module, decoder: torch.nn.Module, clip: SyntheticClip) -> list[Tensor]:
    """Per-frame voxels ``[n, 3]`` decoded from the structure encoder's posterior mean of the true occupancy."""
    from ss4d.models.structure_vae import occupancy_to_coords

    p = next(decoder.parameters())
    grid = occupancy_grid(clip)[None].to(p.device, p.dtype)  # [1, T, 1, R, R, R]
    coords = occupancy_to_coords(decoder(encoder(grid)[1])).cpu()
    return [coords[coords[:, 0] == t, 1:] for t in range(grid.shape[1])]
