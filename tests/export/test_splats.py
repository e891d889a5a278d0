import math
import struct

import numpy as np
import pytest

from ss4d.export.splats import (
    CHUNK,
    _fields,
    compressed_ply_bytes,
    read_compressed_ply,
    read_splat,
    save_splat_sequence,
    splat_bytes,
)

from .gaussians import random_gaussians


def _match(decoded: dict, original: dict) -> np.ndarray:
    """Index of the original splat each decoded one came from (nearest position; writers reorder)."""
    d = np.linalg.norm(decoded["xyz"][:, None] - original["xyz"][None], axis=-1)
    return d.argmin(1)


def _quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2 * np.arccos(np.clip(np.abs((a * b).sum(1)), 0, 1))


def test_compressed_ply_round_trip_within_quantisation_bounds():
    g = random_gaussians(700)  # three chunks, the last one partial
    f = _fields(g, "y")
    keep = f["opacity"] > 1 / 255
    f = {k: v[keep] for k, v in f.items()}
    d = read_compressed_ply(compressed_ply_bytes(g))
    assert len(d["xyz"]) == keep.sum() > 2 * CHUNK
    idx = _match(d, f)
    assert len(set(idx.tolist())) == len(idx)  # one-to-one
    span = np.ptp(f["xyz"], 0)  # a chunk's bounds are within the frame's: steps <= span / (2^bits - 1)
    assert (np.abs(d["xyz"] - f["xyz"][idx]) <= span / np.array([2047, 1023, 2047]) / 2 + 1e-6).all()
    log_span = np.ptp(f["log_scale"], 0)
    assert (np.abs(d["log_scale"] - f["log_scale"][idx]) <= log_span / np.array([2047, 1023, 2047]) / 2 + 1e-5).all()
    assert np.abs(d["rgb"] - f["rgb"][idx]).max() <= np.ptp(f["rgb"], 0).max() / 255 / 2 + 1e-6
    assert np.abs(d["opacity"] - f["opacity"][idx]).max() <= 0.5 / 255 + 1e-6
    # 10 bits per component of the 3 smallest (|c| <= 1/sqrt 2): the angle error stays well under a degree
    assert _quat_angle(d["quat"], f["quat"][idx] / np.linalg.norm(f["quat"][idx], axis=1, keepdims=True)).max() < 0.01


def _slow_compressed_vertex(data: bytes, i: int) -> tuple:
    """Splat i decoded field by field with struct: an independent reading of the documented layout."""
    header, body = data.split(b"end_header\n", 1)
    n_chunks = int(header.decode().split("element chunk ")[1].split()[0])
    bounds = struct.unpack_from("<18f", body, 72 * (i // CHUNK))
    pos, rot, _scale, col = struct.unpack_from("<4I", body, 72 * n_chunks + 16 * i)
    x = bounds[0] + ((pos >> 21) & 2047) / 2047 * (bounds[3] - bounds[0])
    y = bounds[1] + ((pos >> 11) & 1023) / 1023 * (bounds[4] - bounds[1])
    z = bounds[2] + (pos & 2047) / 2047 * (bounds[5] - bounds[2])
    comps = [((rot >> s) & 1023) / 1023 for s in (20, 10, 0)]
    comps = [(c - 0.5) * math.sqrt(2) for c in comps]
    q = comps[:]
    q.insert(rot >> 30, math.sqrt(max(0.0, 1 - sum(c * c for c in comps))))
    return (x, y, z), q, (col & 255) / 255


def test_compressed_ply_matches_a_slow_reading_of_the_layout():
    data = compressed_ply_bytes(random_gaussians(300, seed=1))
    d = read_compressed_ply(data)
    for i in (0, 1, 255, 256, len(d["xyz"]) - 1):
        xyz, q, opacity = _slow_compressed_vertex(data, i)
        np.testing.assert_allclose(d["xyz"][i], xyz, atol=1e-6)
        np.testing.assert_allclose(d["quat"][i], q, atol=1e-6)
        assert d["opacity"][i] == pytest.approx(opacity)


def test_compressed_ply_header_is_supersplats():
    header = compressed_ply_bytes(random_gaussians(10)).split(b"end_header\n")[0].decode().splitlines()
    assert header[:3] == ["ply", "format binary_little_endian 1.0", "element chunk 1"]
    assert "property float min_scale_x" in header and "property float max_b" in header
    assert header[-4:] == [f"property uint packed_{p}" for p in ("position", "rotation", "scale", "color")]


def test_splat_round_trip_and_record_layout():
    g = random_gaussians(200, seed=2)
    f = _fields(g, "y")
    data = splat_bytes(g)
    assert len(data) == 32 * 200
    d = read_splat(data)
    idx = _match(d, f)
    np.testing.assert_allclose(d["xyz"], f["xyz"][idx], atol=1e-6)
    np.testing.assert_allclose(d["log_scale"], f["log_scale"][idx], atol=1e-5)
    assert np.abs(d["rgb"] - np.clip(f["rgb"][idx], 0, 1)).max() <= 1 / 255 + 1e-9  # truncation to uint8
    assert np.abs(d["opacity"] - f["opacity"][idx]).max() <= 1 / 255 + 1e-9
    assert _quat_angle(d["quat"], f["quat"][idx]).max() < 0.05  # 8 bits per component
    x, y, z = struct.unpack_from("<3f", data, 32 * 5)
    np.testing.assert_allclose((x, y, z), d["xyz"][5], atol=0)


def test_save_splat_sequence_names_and_rejects_unknown_formats(tmp_path):
    frames = [random_gaussians(20, seed=s) for s in range(3)]
    paths = save_splat_sequence(frames, tmp_path, ["compressed-ply", "splat"])
    assert sorted(p.name for p in paths) == sorted(
        [f"frame_{i:04d}.compressed.ply" for i in range(3)] + [f"frame_{i:04d}.splat" for i in range(3)]
    )
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(ValueError, match="unknown splat formats"):
        save_splat_sequence(frames, tmp_path, ["spz"])


@pytest.mark.parametrize("fmt", ["ply_compressed", "splat"])
def test_writers_agree_with_gsplats_exporter(fmt):
    exporter = pytest.importorskip("gsplat.exporter", reason="gsplat not installed (pip install gsplat)")
    torch = pytest.importorskip("torch")
    g = random_gaussians(600, seed=4)
    f = _fields(g, "y")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    logit = np.log(f["opacity"] / (1 - f["opacity"]))
    sh0 = t((f["rgb"] - 0.5) / 0.28209479177387814)[:, None]
    theirs = exporter.export_splats(t(f["xyz"]), t(f["log_scale"]), t(f["quat"]), t(logit), sh0,
                                    torch.zeros(600, 0, 3), format=fmt)  # fmt: skip
    ours, read = (
        (compressed_ply_bytes(g), read_compressed_ply) if fmt == "ply_compressed" else (splat_bytes(g), read_splat)
    )
    a, b = read(ours), read(theirs)
    assert len(a["xyz"]) == len(b["xyz"])
    idx = _match(a, b)  # the two writers order splats alike (Morton) but not identically
    span = np.ptp(f["xyz"], 0)
    assert (np.abs(a["xyz"] - b["xyz"][idx]) <= span / 1023 + 1e-6).all()  # within a quantisation step of each other
    for k in ("log_scale", "rgb", "opacity"):
        assert np.abs(a[k] - b[k][idx]).max() <= np.ptp(f[k]) / 255 + 2 / 255, k
    assert _quat_angle(a["quat"], b["quat"][idx]).max() < 0.05
