"""Losses (TRELLIS recipes; docs/design.md)."""

import torch
from torch import Tensor

from ss4d.schedulers import FlowMatchEulerScheduler, FlowMatchScheduler, logit_normal_timesteps

__all__ = ["cfm_loss", "dice_loss", "kl_loss", "structure_vae_loss"]


def dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """``1 - dice(sigmoid(logits), target)`` over all voxels of each sample, averaged."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1).to(p.dtype)
    return (1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


def kl_loss(mean: Tensor, logvar: Tensor) -> Tensor:
    """``0.5 * mean(mu^2 + exp(logvar) - logvar - 1)``."""
    return 0.5 * (mean.square() + logvar.exp() - logvar - 1).mean()


def structure_vae_loss(vae, occupancy: Tensor, generator: torch.Generator, kl_weight: float = 1e-3):
    """Dice on the reconstructed occupancy + ``kl_weight`` KL (the TRELLIS SS VAE config)."""
    logits, mean, logvar = vae(occupancy, sample_posterior=True, generator=generator)
    dice, kl = dice_loss(logits.flatten(0, 1), occupancy.flatten(0, 1)), kl_loss(mean, logvar)
    return dice + kl_weight * kl, {"dice": float(dice.detach()), "kl": float(kl.detach())}


def cfm_loss(
    velocity_fn,
    x0: Tensor,
    generator: torch.Generator,
    *,
    batch_size: int,
    scheduler: FlowMatchScheduler | None = None,
    t_mean: float = 1.0,
    t_std: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    """Conditional flow matching: MSE between ``velocity_fn(x_t, t)`` and ``(1 - sigma_min) eps - x0``.

    The path and the target are the scheduler's (:meth:`~ss4d.schedulers.FlowMatchScheduler.add_noise`,
    ``velocity_target``; default: the pipeline's Euler settings, sigma_min 1e-5), so a model trains on the path
    its sampler integrates. ``t`` is logit-normal per sample (``batch_size`` values; ``x0``'s leading dim is
    ``batch_size`` times a whole number of rows per sample).
    """
    s = scheduler or FlowMatchEulerScheduler()
    t = logit_normal_timesteps(batch_size, mean=t_mean, std=t_std, generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    t_rows = t.repeat_interleave(x0.shape[0] // batch_size)
    x_t = s.add_noise(x0, eps, t_rows)
    loss = (velocity_fn(x_t, t) - s.velocity_target(x0, eps)).square().mean()
    return loss, {"t_mean": float(t.mean())}
