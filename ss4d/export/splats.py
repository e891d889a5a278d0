"""Per-frame splat files for other viewers: SuperSplat's compressed PLY and antimatter15's ``.splat``.

Both are written from the fields of :func:`ss4d.representations.io.gaussians_to_ply_array` (y-up by default,
like ss4d's PLYs), SH degree 0.

**Compressed PLY** (``.compressed.ply``, PlayCanvas SuperSplat; the layout gsplat's exporter writes): splats are
put in Morton order of their 10-bit quantised positions and grouped in chunks of 256. ``element chunk`` has 18
floats per chunk: ``min_x min_y min_z max_x max_y max_z``, the same for the log scales (clamped to +-20) and for
the colours ``0.5 + 0.28209479 f_dc``. ``element vertex`` has 4 uint32 per splat:

* ``packed_position``: x, y, z in 11 / 10 / 11 bits, linear between the chunk's bounds;
* ``packed_rotation``: the unit quaternion (w, x, y, z) turned so its largest component is positive; 2 bits
  index that component, the other three in 10 bits each as ``c * sqrt(2) / 2 + 0.5``;
* ``packed_scale``: log scales in 11 / 10 / 11 bits between the chunk's bounds;
* ``packed_color``: r, g, b (between the chunk's bounds) and the opacity ``sigmoid(opacity)``, 8 bits each.

Splats with opacity <= 1/255 are dropped. Unorm packing is ``floor(v (2^b - 1) + 0.5)``.

**.splat**: 32 bytes per splat, no header: position ``3 x float32``, activated scale ``3 x float32``, colour and
opacity ``4 x uint8`` (``clip(v * 255)``), quaternion (w, x, y, z) ``4 x uint8`` (``clip(q * 128 + 128)``).
"""

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ss4d.errors import InputError
from ss4d.export._atomic import write_atomic
from ss4d.representations import Gaussians
from ss4d.representations.io import Up, gaussians_to_ply_array

__all__ = [
    "SPLAT_FORMATS",
    "compressed_ply_bytes",
    "read_compressed_ply",
    "read_splat",
    "save_splat_sequence",
    "splat_bytes",
]

SH_C0 = 0.28209479177387814
CHUNK = 256
SPLAT_FORMATS = {"compressed-ply": ".compressed.ply", "splat": ".splat"}
_CHUNK_FIELDS = [f"{m}_{a}" for prefix, axes in (("", "xyz"), ("scale_", "xyz"), ("", "rgb"))
                 for m in ("min", "max") for a in (prefix + c for c in axes)]  # fmt: skip
_VERTEX_FIELDS = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]


def _fields(g: Gaussians, up: Up) -> dict[str, np.ndarray]:
    a = gaussians_to_ply_array(g, up=up)
    col = lambda *n: np.stack([a[k].astype(np.float64) for k in n], axis=1)  # noqa: E731
    return {"xyz": col("x", "y", "z"), "log_scale": col("scale_0", "scale_1", "scale_2"),
            "quat": col("rot_0", "rot_1", "rot_2", "rot_3"), "rgb": 0.5 + SH_C0 * col("f_dc_0", "f_dc_1", "f_dc_2"),
            "opacity": 1 / (1 + np.exp(-a["opacity"].astype(np.float64)))}  # fmt: skip


def _morton_order(xyz: np.ndarray) -> np.ndarray:
    lo, span = xyz.min(0), np.ptp(xyz, axis=0)
    q = np.floor((xyz - lo) / np.where(span > 0, span, 1) * 1023).astype(np.uint64)
    code = np.zeros(len(xyz), np.uint64)
    for bit in range(10):
        for axis in range(3):
            code |= ((q[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return np.argsort(code, kind="stable")


def _unorm(v: np.ndarray, bits: int) -> np.ndarray:
    t = (1 << bits) - 1
    return np.clip(np.floor(v * t + 0.5), 0, t).astype(np.uint32)


def _normalise(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = hi - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 0.0)


def _pack_111011(v: np.ndarray) -> np.ndarray:
    return (_unorm(v[:, 0], 11) << 21) | (_unorm(v[:, 1], 10) << 11) | _unorm(v[:, 2], 11)


def _pack_rotation(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    largest = np.argmax(np.abs(q), axis=1)
    q = q * np.where(q[np.arange(len(q)), largest] < 0, -1.0, 1.0)[:, None]
    rest = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    c = _unorm(np.take_along_axis(q, rest, axis=1) * (math.sqrt(2) * 0.5) + 0.5, 10)
    return (largest.astype(np.uint32) << 30) | (c[:, 0] << 20) | (c[:, 1] << 10) | c[:, 2]


def compressed_ply_bytes(g: Gaussians, *, up: Up = "y") -> bytes:
    """One frame as a SuperSplat compressed PLY (see the module docstring)."""
    f = _fields(g, up)
    keep = f["opacity"] > 1 / 255
    f = {k: v[keep] for k, v in f.items()}
    n = len(f["xyz"])
    order = _morton_order(f["xyz"]) if n else np.zeros(0, np.int64)
    f = {k: v[order] for k, v in f.items()}
    chunks, packed = [], []
    for s in range(0, n, CHUNK):
        c = {k: v[s : s + CHUNK] for k, v in f.items()}
        ls = c["log_scale"].clip(-20, 20)
        bounds = [(c["xyz"].min(0), c["xyz"].max(0)), (ls.min(0), ls.max(0)), (c["rgb"].min(0), c["rgb"].max(0))]
        chunks.append(np.concatenate([x for b in bounds for x in b]))
        colour = np.concatenate([_normalise(c["rgb"], *bounds[2]), c["opacity"][:, None]], axis=1)
        cu = [_unorm(colour[:, i], 8) for i in range(4)]
        packed.append(np.stack([
            _pack_111011(_normalise(c["xyz"], *bounds[0])), _pack_rotation(c["quat"]),
            _pack_111011(_normalise(ls, *bounds[1])), (cu[0] << 24) | (cu[1] << 16) | (cu[2] << 8) | cu[3],
        ], axis=1))  # fmt: skip
    header = ["ply", "format binary_little_endian 1.0", f"element chunk {len(chunks)}"]
    header += [f"property float {p}" for p in _CHUNK_FIELDS] + [f"element vertex {n}"]
    header += [f"property uint {p}" for p in _VERTEX_FIELDS] + ["end_header"]
    body = np.array(chunks, "<f4").reshape(-1, 18).tobytes()
    body += np.concatenate(packed).astype("<u4").tobytes() if packed else b""
    return ("\n".join(header) + "\n").encode("ascii") + body


def _unpack_unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((v >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


def read_compressed_ply(data: bytes) -> dict[str, np.ndarray]:
    """Decode a compressed PLY into ``xyz``, ``log_scale``, ``quat`` (w, x, y, z), ``rgb``, ``opacity``."""
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise InputError("not a PLY file (no ply / end_header)")
    header = data[:end].decode("ascii").splitlines()
    counts = {m.group(1): int(m.group(2)) for h in header if (m := re.match(r"element (\w+) (\d+)", h))}
    if "chunk" not in counts or "vertex" not in counts:
        raise InputError("not a compressed PLY (needs `element chunk` and `element vertex`)")
    body = data[end + len("end_header\n") :]
    n_chunks, n = counts["chunk"], counts["vertex"]
    chunks = np.frombuffer(body, "<f4", n_chunks * 18).reshape(n_chunks, 18).astype(np.float64)
    v = np.frombuffer(body, "<u4", n * 4, n_chunks * 72).reshape(n, 4)
    b = np.repeat(chunks, CHUNK, axis=0)[:n]
    lerp = lambda t, lo, hi: lo + t * (hi - lo)  # noqa: E731
    unpack3 = lambda w: np.stack([_unpack_unorm(w, 21, 11), _unpack_unorm(w, 11, 10), _unpack_unorm(w, 0, 11)], 1)  # noqa: E731
    xyz = lerp(unpack3(v[:, 0]), b[:, 0:3], b[:, 3:6])
    log_scale = lerp(unpack3(v[:, 2]), b[:, 6:9], b[:, 9:12])
    colour = np.stack([_unpack_unorm(v[:, 3], s, 8) for s in (24, 16, 8, 0)], 1)
    rgb = lerp(colour[:, :3], b[:, 12:15], b[:, 15:18])
    rest = np.stack([(_unpack_unorm(v[:, 1], s, 10) - 0.5) / (math.sqrt(2) * 0.5) for s in (20, 10, 0)], 1)
    largest = (v[:, 1] >> np.uint32(30)).astype(np.int64)
    quat = np.zeros((n, 4))
    slots = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    np.put_along_axis(quat, slots, rest, axis=1)
    quat[np.arange(n), largest] = np.sqrt(np.clip(1 - (rest**2).sum(1), 0, None))
    return {"xyz": xyz, "log_scale": log_scale, "quat": quat, "rgb": rgb, "opacity": colour[:, 3]}


def splat_bytes(g: Gaussians, *, up: Up = "y") -> bytes:
    """One frame as antimatter15 ``.splat`` records (32 bytes each, Morton order; see the module docstring)."""
    f = _fields(g, up)
    order = _morton_order(f["xyz"]) if len(f["xyz"]) else np.zeros(0, np.int64)
    f = {k: v[order] for k, v in f.items()}
    q = f["quat"] / np.linalg.norm(f["quat"], axis=1, keepdims=True)
    rec = np.zeros(len(q), dtype=[("xyz", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    rec["xyz"], rec["scale"] = f["xyz"], np.exp(f["log_scale"])
    rec["rgba"] = np.clip(np.concatenate([f["rgb"], f["opacity"][:, None]], 1) * 255, 0, 255).astype(np.uint8)
    rec["rot"] = np.clip(q * 128 + 128, 0, 255).astype(np.uint8)
    return rec.tobytes()


def read_splat(data: bytes) -> dict[str, np.ndarray]:
    """Decode ``.splat`` records into ``xyz``, ``log_scale``, ``quat`` (w, x, y, z), ``rgb``, ``opacity``."""
    if len(data) % 32:
        raise InputError(f"a .splat file holds 32-byte records; got {len(data)} bytes")
    rec = np.frombuffer(data, dtype=[("xyz", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    q = (rec["rot"].astype(np.float64) - 128) / 128
    rgba = rec["rgba"].astype(np.float64) / 255
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    xyz, log_scale = rec["xyz"].astype(np.float64), np.log(rec["scale"].astype(np.float64))
    return {"xyz": xyz, "log_scale": log_scale, "quat": q, "rgb": rgba[:, :3], "opacity": rgba[:, 3]}


def save_splat_sequence(
    frames: Sequence[Gaussians], folder: str | Path, formats: Sequence[str] = ("compressed-ply",), *, up: Up = "y"
) -> list[Path]:
    """``folder/frame_0000.compressed.ply`` / ``.splat`` ... for each of ``formats`` (keys of SPLAT_FORMATS)."""
    unknown = set(formats) - set(SPLAT_FORMATS)
    if unknown:
        raise InputError(f"unknown splat formats {sorted(unknown)}; choose from {sorted(SPLAT_FORMATS)}")
    writers = {"compressed-ply": compressed_ply_bytes, "splat": splat_bytes}
    paths = []
    for fmt in formats:
        for i, g in enumerate(frames):
            data = writers[fmt](g, up=up)
            path = Path(folder) / f"frame_{i:04d}{SPLAT_FORMATS[fmt]}"
            paths.append(write_atomic(path, lambda tmp, data=data: tmp.write_bytes(data)))
    return paths
