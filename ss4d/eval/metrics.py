"""Metrics for 4D evaluation: PSNR, SSIM, flicker and temporal error on images; voxel IoU on the structure.

:func:`ssim` is ss4d's differentiable SSIM (the SLat VAE's training loss); the SSIM that evaluations report is
:func:`reported_ssim`, torchmetrics' implementation (``pip install torchmetrics``)."""

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

__all__ = ["bbox_crop", "flicker", "psnr", "reported_ssim", "ssim", "temporal_error", "voxel_iou"]


def psnr(pred: Float[Tensor, "*b c h w"], target: Float[Tensor, "*b c h w"]) -> Tensor:
    """Mean PSNR (dB) of images in [0, 1]."""
    mse = (pred - target).square().flatten(-3).mean(-1).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).mean()


def ssim(a: Float[Tensor, "n c h w"], b: Float[Tensor, "n c h w"], window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images in [0, 1] (Gaussian window 11 / 1.5; C1 = 0.01^2, C2 = 0.03^2), differentiable."""
    coords = torch.arange(window, dtype=a.dtype, device=a.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum())[None, None]
    C = a.shape[1]
    kx, ky = g[..., None, :].expand(C, 1, 1, window), g[..., :, None].expand(C, 1, window, 1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kx, padding=(0, window // 2), groups=C), ky, padding=(window // 2, 0), groups=C)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean()


def reported_ssim(pred: Float[Tensor, "n c h w"], target: Float[Tensor, "n c h w"]) -> Tensor:
    """Mean SSIM of images in [0, 1] by torchmetrics (Gaussian window 11 / 1.5, data range 1); crops smaller
    than the window use the largest odd window that fits (sigma scaled alike)."""
    from ss4d.ops._optional import require

    tm = require("torchmetrics.functional.image", hint="pip install torchmetrics (or ss4d[eval])")
    k = min(11, min(pred.shape[-2:]) - (1 - min(pred.shape[-2:]) % 2))
    if k < 3:
        raise ValueError(f"images of {tuple(pred.shape[-2:])} pixels are too small for SSIM")
    return tm.structural_similarity_index_measure(pred, target, data_range=1.0, kernel_size=k, sigma=1.5 * k / 11)


def temporal_error(pred: Float[Tensor, "t c h w"], truth: Float[Tensor, "t c h w"]) -> Tensor:
    """Mean ``|(pred[t+1] - pred[t]) - (truth[t+1] - truth[t])|`` over consecutive frames seen from one fixed
    camera: 0 when the prediction changes exactly as the truth does (a still prediction of a moving object
    scores the truth's own :func:`flicker`)."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and truth {tuple(truth.shape)} differ in shape")
    if pred.shape[0] < 2:
        return pred.new_zeros(())
    return ((pred[1:] - pred[:-1]) - (truth[1:] - truth[:-1])).abs().mean()


def flicker(frames: Float[Tensor, "t c h w"]) -> Tensor:
    """Mean L1 between consecutive frames of a rendered sequence (same camera): temporal jitter."""
    if frames.shape[0] < 2:
        return frames.new_zeros(())
    return (frames[1:] - frames[:-1]).abs().mean()


def bbox_crop(alpha: Float[Tensor, "h w"], *images: Tensor, margin: int = 2) -> list[Tensor]:
    """Crop ``[..., H, W]`` images to the bounding box of ``alpha > 0`` (grown by ``margin`` pixels)."""
    ys, xs = torch.nonzero(alpha > 0, as_tuple=True)
    if ys.numel() == 0:
        return list(images)
    H, W = alpha.shape
    y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, H)
    x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, W)
    return [im[..., y0:y1, x0:x1] for im in images]


def voxel_iou(a: Tensor, b: Tensor) -> float:
    """IoU of two voxel sets given as ``[N, D]`` integer coordinates (rows are voxels; duplicates count once).
    Two empty sets have IoU 1."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"voxel sets must be [N, D] with one D, got {tuple(a.shape)} and {tuple(b.shape)}")
    sa, sb = {tuple(r) for r in a.tolist()}, {tuple(r) for r in b.tolist()}
    union = len(sa | sb)
    return 1.0 if union == 0 else len(sa & sb) / union
