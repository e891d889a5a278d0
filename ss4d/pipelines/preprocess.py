"""Clip preprocessing as the official pipeline: one crop for the whole clip, premultiplied onto black.

1. An alpha matte per frame: the clip's own alpha; else ``masks`` given by the caller; else rembg when it is
   installed *and* its model file is on disk; else a built-in estimator for (near-)uniform backgrounds.
   What was used is reported (and warned about when estimated).
2. The union bounding box of ``alpha > 0`` over all frames, grown to a square of ``crop_scale`` (1.2) times
   its longer side around its centre (zero padding outside the image).
3. Every frame cropped with that box, resized to the condition encoder's size, RGB premultiplied by alpha.
"""

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ss4d.data import Clip
from ss4d.errors import MediaError

__all__ = ["Preprocessed", "estimate_uniform_background_alpha", "pad_frames", "preprocess_clip"]


@dataclass
class Preprocessed:
    images: Float[Tensor, "t 3 s s"]  # premultiplied onto black, in [0, 1]
    alpha: Float[Tensor, "t 1 s s"]
    bbox: tuple[int, int, int, int]  # square crop (x0, y0, x1, y1) in source pixels (may exceed the image)
    mask_source: str  # "alpha", "masks", "rembg" or "uniform-background"


def estimate_uniform_background_alpha(
    rgb: Float[Tensor, "t 3 h w"], *, threshold: float = 0.08, max_border_spread: float = 0.12
) -> Float[Tensor, "t 1 h w"]:
    """Foreground mask for a (near-)uniform background: pixels that differ from the border colour.

    Raises:
        ValueError: the border is not uniform enough to tell background from object.
    """
    border = torch.cat([rgb[..., 0, :], rgb[..., -1, :], rgb[..., :, 0], rgb[..., :, -1]], dim=-1)  # [t, 3, n]
    bg = border.median(dim=-1).values  # [t, 3]
    spread = (border - bg[..., None]).abs().amax(dim=1).float().quantile(0.9, dim=-1)
    if bool((spread > max_border_spread).any()):
        raise MediaError(
            "the frames have no alpha channel and their background is not uniform, so the object cannot be "
            "separated: pass RGBA frames, `masks=` (one per frame), or install rembg with its model on disk"
        )
    diff = (rgb - bg[..., None, None]).abs().amax(dim=1, keepdim=True)
    mask = (diff > threshold).float()
    mask = -F.max_pool2d(-mask, 3, 1, 1)  # opening: drop single-pixel specks
    return F.max_pool2d(mask, 3, 1, 1)


def _rembg_alpha(rgb: Tensor) -> Tensor | None:
    """rembg's matte when rembg is installed and its u2net model is already on disk (no downloads)."""
    try:
        import rembg
    except ImportError:
        return None
    model = Path(os.environ.get("U2NET_HOME", Path.home() / ".u2net")) / "u2net.onnx"
    if not model.is_file():
        return None
    from PIL import Image

    session = rembg.new_session("u2net")
    out = []
    for frame in rgb:
        im = Image.fromarray((frame.permute(1, 2, 0).clamp(0, 1) * 255).byte().cpu().numpy())
        matte = rembg.remove(im, session=session, only_mask=True)
        out.append(torch.from_numpy(np.asarray(matte)).float()[None] / 255.0)
    return torch.stack(out)


def preprocess_clip(
    clip: Clip,
    size: int,
    *,
    masks: Float[Tensor, "t 1 h w"] | None = None,
    crop_scale: float = 1.2,
) -> Preprocessed:
    """Crop, resize and premultiply a clip for the condition encoder (see the module docstring).

    Raises:
        ValueError: masks of the wrong shape, frames whose alpha is empty, non-uniform backgrounds without
            any matte.
    """
    frames = clip.frames.float()
    T, C, H, W = frames.shape
    rgb = frames[:, :3]
    if masks is not None:
        if masks.shape != (T, 1, H, W):
            raise MediaError(f"`masks` must be [T, 1, H, W] = {[T, 1, H, W]}, got {tuple(masks.shape)}")
        alpha, source = masks.float().clamp(0, 1), "masks"
    elif clip.has_alpha:
        alpha, source = frames[:, 3:4], "alpha"
    else:
        matte = _rembg_alpha(rgb)
        if matte is not None:
            alpha, source = matte, "rembg"
        else:
            alpha, source = estimate_uniform_background_alpha(rgb), "uniform-background"
            warnings.warn(
                "no alpha channel: the object was separated from an estimated uniform background; pass RGBA "
                "frames or `masks=` for control (rembg is used automatically when installed with its model)",
                stacklevel=2,
            )
    empty = [t for t in range(T) if not bool((alpha[t] > 0).any())]
    if empty:
        raise MediaError(f"frames {empty} have an empty object mask (fully transparent): nothing to reconstruct")
    ys, xs = torch.nonzero((alpha > 0).any(dim=0)[0], as_tuple=True)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = max(1, round(max(x1 - x0, y1 - y0) * crop_scale))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bx0, by0 = round(cx - side / 2), round(cy - side / 2)
    bbox = (bx0, by0, bx0 + side, by0 + side)
    rgba = torch.cat([rgb * alpha, alpha], dim=1)  # premultiplied
    pad = (max(0, -bx0), max(0, bbox[2] - W), max(0, -by0), max(0, bbox[3] - H))
    rgba = F.pad(rgba, pad)
    ox, oy = bx0 + pad[0], by0 + pad[2]
    crop = rgba[:, :, oy : oy + side, ox : ox + side]
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return Preprocessed(crop[:, :3].contiguous(), crop[:, 3:].contiguous(), bbox, source)


def pad_frames(x: Tensor, multiple: int = 2) -> tuple[Tensor, int]:
    """Repeat the last frame (dim 0 is T) until T is a multiple of ``multiple``; returns ``(padded, T)``."""
    T = x.shape[0]
    extra = (-T) % multiple
    if extra:
        x = torch.cat([x, x[-1:].expand(extra, *x.shape[1:])], dim=0)
    return x, T
