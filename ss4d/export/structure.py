"""``structure.npz``: what a result folder needs besides its Gaussians to be viewed and meshed later.

The sampled voxels of every frame (``coords`` ``[n, 3]`` int16 concatenated over frames, ``frame_offsets``,
``resolution``), the preprocessed input frames (``images`` ``[t, h, w, 3]`` uint8, at most 256 px) and the clip's
frame rate (``fps``). ``ss4d generate --viewer`` / ``--mesh`` write it; :func:`load_structure` reads it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ss4d.errors import InputError
from ss4d.export._atomic import write_atomic

__all__ = ["Structure", "load_structure", "save_structure"]

FORMAT = "ss4d-structure-v1"
MAX_IMAGE_SIZE = 256


@dataclass
class Structure:
    coords: list[np.ndarray]  # per frame [n, 3] voxel indices at `resolution`
    resolution: int
    images: np.ndarray | None  # [t, h, w, 3] uint8 input frames, or None
    fps: float


def _images_uint8(images: Tensor) -> np.ndarray:
    x = images.detach().float().cpu()
    if x.shape[-1] > MAX_IMAGE_SIZE:
        x = F.interpolate(x, size=(MAX_IMAGE_SIZE, MAX_IMAGE_SIZE), mode="bilinear", antialias=True)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_structure(path: str | Path, coords: list[Tensor], resolution: int, images: Tensor | None, fps: float) -> Path:
    """Write ``structure.npz`` (voxels per frame, input frames ``[t, 3, s, s]`` in [0, 1], fps)."""
    if fps <= 0:
        raise InputError(f"`fps` must be > 0, got {fps}")
    arrays = {
        "coords": np.concatenate([c.cpu().numpy().astype(np.int16).reshape(-1, 3) for c in coords]),
        "frame_offsets": np.cumsum([0] + [int(c.shape[0]) for c in coords]),
        "resolution": np.array(int(resolution)),
        "fps": np.array(float(fps)),
        "format": np.array(FORMAT),
    }
    if images is not None:
        arrays["images"] = _images_uint8(images)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return write_atomic(path, write)


def load_structure(path: str | Path) -> Structure:
    """Inverse of :func:`save_structure` (images as uint8)."""
    with np.load(Path(path), allow_pickle=False) as d:
        if "format" not in d or str(d["format"]) != FORMAT:
            raise InputError(f"{path}: not an ss4d structure file (written by `ss4d generate --viewer`)")
        off = d["frame_offsets"]
        coords = [d["coords"][off[i] : off[i + 1]].astype(np.int64) for i in range(len(off) - 1)]
        images = d["images"].copy() if "images" in d else None
        return Structure(coords, int(d["resolution"]), images, float(d["fps"]))
