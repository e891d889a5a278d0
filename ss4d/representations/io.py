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

from ss4d.errors import ConfigError, MediaError
from ss4d.representations.gaussians import SCALING_ACTIVATIONS, GaussianActivation, Gaussians
from ss4d.utils.untrusted import check_finite

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


_PLY_TYPE_BYTES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
                   "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8,
                   "float64": 8}  # fmt: skip
_MAX_PLY_HEADER = 1 << 16


def _check_ply_header(path: Path) -> None:
    """Bound the element counts of a PLY header by the file's size before anything is allocated."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_MAX_PLY_HEADER)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise MediaError(f"{path}: not a PLY file (no 'ply' magic or no end_header in the first 64 KiB)")
    data = size - (head.index(b"\n", end) + 1 if b"\n" in head[end:] else size)
    lines = head[:end].decode("ascii", errors="replace").splitlines()
    ascii_ = any(line.startswith("format ascii") for line in lines)
    need, row, count = 0, 0, 0
    for line in [*lines, "element end 0"]:
        parts = line.split()
        if parts[:1] == ["element"] and len(parts) == 3:
            need += count * (2 * max(row, 1) if ascii_ else row)  # ascii: at least a digit and a separator each
            try:
                count, row = int(parts[2]), 0
            except ValueError:
                raise MediaError(f"{path}: bad element line {line!r}") from None
            if count < 0:
                raise MediaError(f"{path}: negative element count in {line!r}")
        elif parts[:1] == ["property"] and len(parts) >= 3:
            row += 1 if parts[1] == "list" else _PLY_TYPE_BYTES.get(parts[1], 8)
    if need > data:
        raise MediaError(f"{path}: the header promises at least {need} bytes of data, the file has {data}; "
                         "the file is truncated or damaged, re-export it")  # fmt: skip


def _read_ply(path: Path) -> np.ndarray:
    """The ``vertex`` element as a structured array (any property types, ASCII or binary, normals optional)."""
    from plyfile import PlyData, PlyParseError

    _check_ply_header(path)
    try:
        ply = PlyData.read(str(path))
        vertex = ply["vertex"].data
    except KeyError:
        raise MediaError(f"{path}: no 'vertex' element; not a 3DGS PLY") from None
    except (PlyParseError, ValueError, EOFError, OSError) as e:
        raise MediaError(f"{path}: unreadable PLY ({e}); re-export it") from e
    missing = [f for f in _FIELDS if f not in vertex.dtype.names and f not in ("nx", "ny", "nz")]
    if missing:
        raise MediaError(f"{path}: not a 3DGS PLY (missing vertex properties {missing}); export it from a "
                         "Gaussian splatting tool")  # fmt: skip
    return vertex


def load_ply(path: str | Path, *, up: Up = "y", activation: GaussianActivation | None = None) -> Gaussians:
    """Read a 3DGS PLY back into raw ss4d fields (inverse of :func:`save_ply` up to float32 rounding)."""
    _check_up(up)
    act = activation or GaussianActivation()
    data = _read_ply(Path(path))
    col = lambda *names: np.stack([data[n].astype(np.float64) for n in names], axis=1)  # noqa: E731
    check_finite(torch.from_numpy(col(*[f for f in _FIELDS if f in data.dtype.names])), f"{path}",
                 fix="the file holds NaN / inf values; re-export it")  # fmt: skip
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
    raw_scaling = act.raw_scaling(torch.from_numpy(np.asarray(scale, dtype=np.float64))).numpy()
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
        scaling_activation=np.array(act.scaling_activation),
        format=np.array("ss4d-gaussians-v1"),
    )
    return path


def _check_npz(path: Path) -> None:
    """Every member's array header (shape x dtype) must fit in the member's stated size: no allocation is
    made from a header that lies."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    fmt = np.lib.format
                    version = fmt.read_magic(f)
                    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = read(f, max_header_size=10000)
                    if dtype.hasobject:
                        raise MediaError(f"{path}: member {info.filename} holds Python objects; refusing it")
                    if math.prod(shape) * dtype.itemsize > info.file_size:
                        raise MediaError(f"{path}: member {info.filename} claims {shape} {dtype} but holds "
                                         f"{info.file_size} bytes; the file is damaged")  # fmt: skip
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise MediaError(f"{path}: not a readable .npz ({e}); re-save it with save_npz") from e


def load_npz(path: str | Path) -> list[Gaussians]:
    """Inverse of :func:`save_npz` (exact). Headers are checked against the file before loading.

    Raises:
        FileNotFoundError: no such file.
        MediaError: damaged, hostile or foreign files.
        NonFiniteError: NaN / inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    _check_npz(path)
    with np.load(path, allow_pickle=False) as data:
        need = {"format", "activation", "frame_offsets", "_xyz", "_features_dc", "_scaling", "_rotation", "_opacity"}
        if need - set(data.files) or str(data["format"]) != "ss4d-gaussians-v1":
            raise MediaError(f"{path}: not an ss4d Gaussian sequence (.npz written by save_npz)")
        a = data["activation"]
        kind = str(data["scaling_activation"]) if "scaling_activation" in data.files else "softplus"  # older files
        if kind not in SCALING_ACTIVATIONS:
            raise MediaError(f"{path}: unknown scaling_activation {kind!r} (one of {SCALING_ACTIVATIONS}); "
                             "the file is damaged or from a newer ss4d")  # fmt: skip
        try:
            act = GaussianActivation(float(a[0]), float(a[1]), float(a[2]), tuple(float(v) for v in a[3:]), kind)
        except (ConfigError, IndexError, ValueError) as e:
            raise MediaError(f"{path}: bad activation record ({e}); the file is damaged") from e
        off = data["frame_offsets"]
        fields = {
            k: torch.from_numpy(data[k].copy()) for k in ("_xyz", "_features_dc", "_scaling", "_rotation", "_opacity")
        }
    n = fields["_xyz"].shape[0]
    if (off.ndim != 1 or len(off) < 2 or off[0] != 0 or off[-1] != n or (np.diff(off) < 0).any()
            or any(v.shape[0] != n for v in fields.values()) or len(a) < 9):  # fmt: skip
        raise MediaError(f"{path}: inconsistent frame_offsets / field lengths; the file is damaged")
    check_finite(fields, f"{path}", fix="the file holds NaN / inf values; regenerate it")
    return [
        Gaussians(**{k: v[off[i] : off[i + 1]] for k, v in fields.items()}, activation=act) for i in range(len(off) - 1)
    ]
