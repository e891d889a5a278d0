"""The compact Gaussian encoding embedded in ``viewer.html`` (format ``ss4d-viewer-v1``).

Per frame the activated Gaussians (ss4d's z-up world) are quantised and stored as one block of the binary blob,
starting at a multiple of 4 bytes, ``n`` splats:

=============  ===========  =====================================================================
bytes          type         field
=============  ===========  =====================================================================
``6 n``        uint16 x 3   position, linear between the frame's per-axis ``pos_min`` / ``pos_max``
``3 n``        uint8 x 3    log scale, linear between the frame's ``log_scale_min`` / ``log_scale_max``
``4 n``        uint8 x 4    unit quaternion (w, x, y, z) with w >= 0, ``q = u / 127.5 - 1`` (renormalised)
``4 n``        uint8 x 4    colour ``clamp(0.28209479 f_dc + 0.5, 0, 1)`` and opacity, ``u / 255``
=============  ===========  =====================================================================

Each block is padded to a multiple of 4 bytes. Gaussians with opacity <= 1/255 are dropped (ss4d's rasteriser
never draws them). Voxels follow as ``uint8 x 3`` grid indices per frame (resolution < 256). The JSON metadata
(:func:`encode_sequence`) gives every block's offset and bounds; :func:`decode_frame` is the reference decoder
the browser's ``viewer.js`` mirrors.
"""

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.errors import InputError
from ss4d.representations import Gaussians

__all__ = ["FORMAT", "SplatFrame", "decode_frame", "decode_voxels", "encode_sequence", "splat_frame"]

FORMAT = "ss4d-viewer-v1"
SH_C0 = 0.28209479
ALPHA_MIN = 1.0 / 255.0


@dataclass(frozen=True)
class SplatFrame:
    """Activated Gaussians of one frame as numpy arrays (float32, ss4d's z-up world)."""

    xyz: np.ndarray  # [n, 3]
    scales: np.ndarray  # [n, 3]
    quats: np.ndarray  # [n, 4] unit, (w, x, y, z)
    opacity: np.ndarray  # [n]
    rgb: np.ndarray  # [n, 3] in [0, 1]

    def __len__(self) -> int:
        return self.xyz.shape[0]

    def torch(self) -> dict[str, Float[Tensor, "..."]]:
        """Tensors in the argument order of :func:`ss4d.render.rasterize.project_gaussians`."""
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        return {"means": t(self.xyz), "quats": t(self.quats), "scales": t(self.scales),
                "opacities": t(self.opacity), "colors": t(self.rgb)}  # fmt: skip


def splat_frame(g: Gaussians) -> SplatFrame:
    """Activate one frame's Gaussians (colour from SH degree 0, clamped to [0, 1])."""
    with torch.no_grad():
        g = g.to("cpu", torch.float32)
        rgb = (SH_C0 * g.features[:, 0] + 0.5).clamp(0, 1)
        arrays = [g.xyz, g.scaling, g.rotation, g.opacity[:, 0], rgb]
    return SplatFrame(*(a.numpy().astype(np.float32) for a in arrays))


def _pad4(buf: bytearray) -> None:
    buf.extend(b"\0" * (-len(buf) % 4))


def _quantise(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.clip(np.rint((x - lo) / span * levels), 0, levels)


def _encode_frame(f: SplatFrame, buf: bytearray) -> dict:
    keep = f.opacity > ALPHA_MIN
    xyz, log_s, q, op, rgb = f.xyz[keep], np.log(f.scales[keep]), f.quats[keep], f.opacity[keep], f.rgb[keep]
    n = xyz.shape[0]
    empty = np.zeros(3, np.float32)
    p_lo, p_hi = (xyz.min(0), xyz.max(0)) if n else (empty, empty)
    s_lo, s_hi = (log_s.min(0), log_s.max(0)) if n else (empty, empty)
    q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
    q = np.where(q[:, :1] < 0, -q, q)  # q and -q are the same rotation
    offset = len(buf)
    buf.extend(_quantise(xyz, p_lo, p_hi, 65535).astype("<u2").tobytes())
    buf.extend(_quantise(log_s, s_lo, s_hi, 255).astype(np.uint8).tobytes())
    buf.extend(np.clip(np.rint((q + 1) * 127.5), 0, 255).astype(np.uint8).tobytes())
    rgba = np.concatenate([rgb, op[:, None]], axis=1)
    buf.extend(np.clip(np.rint(rgba * 255), 0, 255).astype(np.uint8).tobytes())
    _pad4(buf)
    return {"n": int(n), "offset": offset, "pos_min": p_lo.tolist(), "pos_max": p_hi.tolist(),
            "log_scale_min": s_lo.tolist(), "log_scale_max": s_hi.tolist()}  # fmt: skip


def encode_sequence(
    frames: list[SplatFrame], voxels: list[np.ndarray] | None = None, resolution: int | None = None
) -> tuple[dict, bytes]:
    """Quantise a sequence (and optionally its voxels, ``[n, 3]`` grid indices per frame) into metadata + blob."""
    if voxels is not None and (resolution is None or not 1 <= resolution <= 256):
        raise InputError(f"voxels need a `resolution` in 1..256, got {resolution}")
    buf = bytearray()
    meta: dict = {"format": FORMAT, "frames": [_encode_frame(f, buf) for f in frames]}
    if voxels is not None:
        meta["resolution"] = int(resolution)
        meta["voxels"] = []
        for v in voxels:
            v = np.asarray(v)
            if v.ndim != 2 or v.shape[1] != 3 or (v.size and (v.min() < 0 or v.max() >= resolution)):
                raise InputError(f"voxels must be [n, 3] indices in 0..{resolution - 1}, got shape {v.shape}")
            meta["voxels"].append({"n": int(v.shape[0]), "offset": len(buf)})
            buf.extend(v.astype(np.uint8).tobytes())
            _pad4(buf)
    return meta, bytes(buf)


def decode_frame(frame_meta: dict, blob: bytes) -> SplatFrame:
    """The dequantised Gaussians of one frame (what the browser draws)."""
    n, o = frame_meta["n"], frame_meta["offset"]
    arr = lambda dtype, start, count: np.frombuffer(blob, dtype, count, start).astype(np.float32)  # noqa: E731
    lerp = lambda u, lo, hi, levels: np.float32(lo) + u / levels * (np.float32(hi) - np.float32(lo))  # noqa: E731
    pos = lerp(arr("<u2", o, 3 * n).reshape(n, 3), frame_meta["pos_min"], frame_meta["pos_max"], 65535)
    log_s = lerp(arr(np.uint8, o + 6 * n, 3 * n).reshape(n, 3), frame_meta["log_scale_min"],
                 frame_meta["log_scale_max"], 255)  # fmt: skip
    q = arr(np.uint8, o + 9 * n, 4 * n).reshape(n, 4) / 127.5 - 1
    q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
    rgba = arr(np.uint8, o + 13 * n, 4 * n).reshape(n, 4) / 255
    return SplatFrame(pos, np.exp(log_s), q.astype(np.float32), rgba[:, 3].copy(), rgba[:, :3].copy())


def decode_voxels(voxel_meta: dict, blob: bytes) -> np.ndarray:
    """``[n, 3]`` int64 grid indices of one frame's voxels."""
    n = voxel_meta["n"]
    return np.frombuffer(blob, np.uint8, 3 * n, voxel_meta["offset"]).reshape(n, 3).astype(np.int64)
