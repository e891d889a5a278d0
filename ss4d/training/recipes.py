"""Loss functions of the four SS4D networks on synthetic clips, ready for :class:`~ss4d.training.Trainer`.

* structure VAE: dice + 1e-3 KL on per-frame occupancy;
* SLat VAE (encoder + Gaussian decoder): render loss through ss4d's rasteriser, L1 + 0.2 (1 - SSIM) against
  one ground-truth view per frame on a random black or white background, + 1e-6 KL (TRELLIS weights);
* flows: conditional flow matching with logit-normal t and condition dropout (CFG), on latents from the
  frozen VAE encoders (computed once per clip by the caller).
"""

import torch
from torch import Tensor

from ss4d.eval.metrics import ssim
from ss4d.render import Camera, render_gaussians
from ss4d.schedulers import FlowMatchEulerScheduler, FlowMatchScheduler, logit_normal_timesteps
from ss4d.training.data import SLatVAEBatch
from ss4d.training.losses import kl_loss

__all__ = ["slat_flow_loss", "slat_vae_loss", "ssim", "structure_flow_loss"]


def slat_vae_loss(encoder, decoder, batch: SLatVAEBatch, generator: torch.Generator, *, kl_weight: float = 1e-6,
                  lpips=None, lpips_weight: float = 0.2):  # fmt: skip
    """Encode voxel features, decode Gaussians, render each frame's ground-truth view, compare: TRELLIS's
    ``L1 + 0.2 (1 - SSIM) [+ 0.2 LPIPS when an LPIPS module is given] + kl_weight KL``."""
    z, mean, logvar = encoder(batch.voxels, sample_posterior=True, generator=generator)
    frames = decoder(z)
    size = batch.views.shape[-1]
    l1 = ssim_term = lpips_term = torch.zeros(())
    for t, gaussians in enumerate(frames):
        white = bool(torch.rand(1, generator=generator) < 0.5)
        bg = torch.full((3,), 1.0 if white else 0.0, device=batch.views.device)
        cam = Camera(batch.viewmats[t], batch.focal, batch.focal, size / 2, size / 2, size, size)
        pred = render_gaussians(gaussians, cam, background=bg).color.permute(2, 0, 1)
        alpha = batch.views[t, 3:4]
        target = batch.views[t, :3] * alpha + bg[:, None, None] * (1 - alpha)
        l1 = l1 + (pred - target).abs().mean()
        ssim_term = ssim_term + (1 - ssim(pred[None], target[None]))
        if lpips is not None:
            lpips_term = lpips_term + lpips(pred[None], target[None])[0]
    T = len(frames)
    kl = kl_loss(mean.feats, logvar.feats)
    loss = l1 / T + 0.2 * ssim_term / T + lpips_weight * lpips_term / T + kl_weight * kl
    logs = {"l1": float(l1.detach()) / T, "ssim": 1 - float(ssim_term.detach()) / T, "kl": float(kl.detach())}
    if lpips is not None:
        logs["lpips"] = float(lpips_term.detach()) / T
    return loss, logs


def _drop_condition(cond: Tensor, generator: torch.Generator, p: float) -> Tensor:
    """Classifier-free guidance dropout: zero the whole condition of a sample with probability ``p``."""
    keep = (torch.rand(cond.shape[0], generator=generator) >= p).to(cond.dtype).view(-1, *[1] * (cond.ndim - 1))
    return cond * keep.to(cond.device)


def structure_flow_loss(flow, cond_encoder, latents: Tensor, frames: Tensor, generator, *, p_uncond: float = 0.1,
                        scheduler: FlowMatchScheduler | None = None):  # fmt: skip
    """CFM on structure latents conditioned on per-frame tokens.

    ``latents [B, T, C, R, R, R]`` (the frozen structure VAE encoder's means), ``frames [B, T, 3, S, S]``. The
    condition encoder trains with the flow unless it is frozen (no parameter requires grad: a pre-trained
    encoder, as DINOv2 in SS4D), in which case it runs without building a graph.
    """
    from ss4d.training.losses import cfm_loss

    B, T = latents.shape[:2]
    with torch.set_grad_enabled(torch.is_grad_enabled() and any(p.requires_grad for p in cond_encoder.parameters())):
        cond = cond_encoder(frames.flatten(0, 1)).unflatten(0, (B, T))
    cond = _drop_condition(cond, generator, p_uncond)
    return cfm_loss(lambda x, t: flow(x, t, cond), latents, generator, batch_size=B, scheduler=scheduler)


def slat_flow_loss(flow, cond_encoder, latents, frames: Tensor, generator, *, mean: Tensor, std: Tensor,
                   p_uncond: float = 0.1, scheduler: FlowMatchScheduler | None = None):  # fmt: skip
    """CFM on normalised structured latents of one clip (layout ``(1, T)``), on the path of ``scheduler``
    (default: the pipeline's Euler settings). ``latents`` = the frozen SLat encoder's means on the clip's voxels
    (a :class:`~ss4d.ops.sparse.SparseTensor`; deterministic per clip, so callers compute them once instead of
    running the encoder every step)."""
    x0 = (latents.feats - mean) / std
    with torch.no_grad():
        cond = cond_encoder(frames[0]).unsqueeze(0)
    cond = _drop_condition(cond, generator, p_uncond)
    s = scheduler or FlowMatchEulerScheduler()
    t = logit_normal_timesteps(1, generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    x_t = s.add_noise(x0, eps, t.expand(x0.shape[0]))
    pred = flow(latents.replace(x_t), t, cond).feats
    loss = (pred - s.velocity_target(x0, eps)).square().mean()
    return loss, {"t": float(t)}
