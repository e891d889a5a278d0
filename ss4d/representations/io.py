"""Export and import of Gaussian sequences: standard 3DGS PLY per frame, and one ``.npz`` per sequence.

PLY (binary little-endian, the 3D Gaussian Splatting layout read by SuperSplat, gsplat tools, etc.):
``x y z nx ny nz f_dc_0..2 opacity scale_0..2 rot_0..3`` with *pre-activation* values as those tools
expect: ``opacity`` = logit, ``scale_i`` = log of the activated scale, ``rot`` = unit quaternion
``(w, x, y, z)``, ``f_dc`` = degree-0 SH coefficients. ss4d's world is z-up; by default PLYs are written
**y-up** (``(x, y, z) -> (x, -z, y)``, the transform TRELLIS uses), with rotations turned to match.
Frames are named ``frame_0000.ply``, ``frame_0001.ply``, ... so viewers load them as a sequence.
"""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ss4d.representations.gaussians import GaussianActivation, Gaussians

__all__ = ["load_npz", "load_ply", "save_npz", "save_ply", "save_ply_sequence"]

Up = Literal["y", "z"]
_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # z-up -> y-up: +90 deg about x
_Q_Y_UP = np.array([math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0])  # the same rotation, wxyz
_FIELDS = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
           "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]  # fmt: skip


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
         aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1,
    )  # fmt: skip


def _check_up(up: str) -> None:
    if up not in ("y", "z"):
        raise ValueError(f"`up` must be 'y' (viewers) or 'z' (ss4d's world), got {up!r}")


def gaussians_to_ply_array(g: Gaussians, *, up: Up = "y") -> np.ndarray:
    """Structured array of the 3DGS PLY fields (float32)."""
    _check_up(up)
    xyz = g.xyz.detach().double().cpu().numpy()
    rot = g.rotation.detach().double().cpu().numpy()
    if up == "y":
        xyz = xyz @ _Y_UP.T
        rot = _quat_mul(np.broadcast_to(_Q_Y_UP, rot.shape), rot)
    opacity = torch.logit(g.opacity.detach().double().clamp(1e-7, 1 - 1e-7)).cpu().numpy()
    scale = g.scaling.detach().double().log().cpu().numpy()
    dc = g.features.detach().double().reshape(len(g), 3).cpu().numpy()
    out = np.empty(len(g), dtype=[(f, "<f4") for f in _FIELDS])
    columns = np.concatenate([xyz, np.zeros_like(xyz), dc, opacity, scale, rot], axis=1)
    for i, name in enumerate(_FIELDS):
        out[name] = columns[:, i]
    return out


def save_ply(g: Gaussians, path: str | Path, *, up: Up = "y") -> Path:
    """Write one frame as a binary 3DGS PLY (see the module docstring for the fields)."""
    path = Path(path)
    data = gaussians_to_ply_array(g, up=up)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(data)}"]
    header += [f"property float {f}" for f in _FIELDS] + ["end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(data.tobytes())
    return path


def save_ply_sequence(frames: Sequence[Gaussians], folder: str | Path, *, up: Up = "y") -> list[Path]:
    """``folder/frame_0000.ply`` ... one per frame (zero-padded so viewers sort them as a sequence)."""
    return [save_ply(g, Path(folder) / f"frame_{i:04d}.ply", up=up) for i, g in enumerate(frames)]


def _read_ply(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        header = []
        while True:
            line = f.readline()
            if not line:
                raise ValueError(f"{path}: not a PLY file (no end_header)")
            header.append(line.decode("ascii", errors="replace").strip())
            if header[-1] == "end_header":
                break
        if not header or header[0] != "ply" or "format binary_little_endian 1.0" not in header:
            raise ValueError(f"{path}: expected a binary little-endian PLY")
        count = next(int(h.split()[2]) for h in header if h.startswith("element vertex"))
        props = [h.split()[2] for h in header if h.startswith("property float")]
        missing = set(_FIELDS) - set(props)
        if missing:
            raise ValueError(f"{path}: not a 3DGS PLY (missing {sorted(missing)})")
        data = np.frombuffer(f.read(count * 4 * len(props)), dtype=[(p, "<f4") for p in props], count=count)
    return data


def load_ply(path: str | Path, *, up: Up = "y", activation: GaussianActivation | None = None) -> Gaussians:
    """Read a 3DGS PLY back into raw ss4d fields (inverse of :func:`save_ply` up to float32 rounding)."""
    _check_up(up)
    act = activation or GaussianActivation()
    data = _read_ply(Path(path))
    col = lambda *names: np.stack([data[n].astype(np.float64) for n in names], axis=1)  # noqa: E731
    xyz, rot = col("x", "y", "z"), col("rot_0", "rot_1", "rot_2", "rot_3")
    if up == "y":
        xyz = xyz @ _Y_UP  # inverse of a rotation = transpose
        conj = _Q_Y_UP * np.array([1.0, -1.0, -1.0, -1.0])
        rot = _quat_mul(np.broadcast_to(conj, rot.shape), rot)
    return _from_activated(
        xyz, col("f_dc_0", "f_dc_1", "f_dc_2"), col("opacity"), np.exp(col("scale_0", "scale_1", "scale_2")), rot, act
    )


def _from_activated(xyz, dc, opacity_logit, scale, rot, act: GaussianActivation) -> Gaussians:
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    aabb = np.array(act.aabb)
    raw_xyz = (xyz - aabb[:3]) / aabb[3:]
    b = act.opacity_bias
    raw_opacity = opacity_logit - math.log(b / (1 - b))
    s2 = np.clip(scale**2 - act.filter_3d**2, 1e-20, None)
    softplus_inv = lambda y: y + np.log(-np.expm1(-y))  # noqa: E731
    sb = act.scaling_bias
    raw_scaling = softplus_inv(np.sqrt(s2)) - softplus_inv(sb)
    raw_rotation = rot / np.linalg.norm(rot, axis=1, keepdims=True) - np.array([1.0, 0.0, 0.0, 0.0])
    return Gaussians(t(raw_xyz), t(dc).reshape(-1, 1, 3), t(raw_scaling), t(raw_rotation), t(raw_opacity), act)


def save_npz(frames: Sequence[Gaussians], path: str | Path) -> Path:
    """The whole sequence in one ``.npz``: raw fields concatenated over frames + ``frame_offsets``."""
    if not frames:
        raise ValueError("save_npz needs at least one frame")
    act = frames[0].activation
    if any(g.activation != act for g in frames):
        raise ValueError("all frames must share the same GaussianActivation")
    arrays = {
        name: torch.cat([getattr(g, name).detach().float().cpu() for g in frames]).numpy()
        for name in ("_xyz", "_features_dc", "_scaling", "_rotation", "_opacity")
    }
    offsets = np.cumsum([0] + [len(g) for g in frames])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        **arrays,
        frame_offsets=offsets,
        activation=np.array([act.scaling_bias, act.opacity_bias, act.filter_3d, *act.aabb]),
        format=np.array("ss4d-gaussians-v1"),
    )
    return path


def load_npz(path: str | Path) -> list[Gaussians]:
    """Inverse of :func:`save_npz` (exact)."""
    with np.load(Path(path), allow_pickle=False) as data:
        if "format" not in data or str(data["format"]) != "ss4d-gaussians-v1":
            raise ValueError(f"{path}: not an ss4d Gaussian sequence (.npz written by save_npz)")
        a = data["activation"]
        act = GaussianActivation(float(a[0]), float(a[1]), float(a[2]), tuple(float(v) for v in a[3:]))
        off = data["frame_offsets"]
        fields = {
            k: torch.from_numpy(data[k].copy()) for k in ("_xyz", "_features_dc", "_scaling", "_rotation", "_opacity")
        }
    return [
        Gaussians(**{k: v[off[i] : off[i + 1]] for k, v in fields.items()}, activation=act) for i in range(len(off) - 1)
    ]
