import numpy as np
import pytest
import torch
from jaxtyping import TypeCheckError
from plyfile import PlyData

from ss4d.representations import (
    Gaussians,
    load_npz,
    load_ply,
    quaternion_to_matrix,
    save_npz,
    save_ply,
    save_ply_sequence,
)


def _gaussians(n=50, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        torch.rand(n, 3, generator=g), torch.randn(n, 1, 3, generator=g), torch.randn(n, 3, generator=g) * 0.5,
        torch.randn(n, 4, generator=g) * 0.3, torch.randn(n, 1, generator=g),
    )  # fmt: skip


@pytest.mark.parametrize("up", ["y", "z"])
def test_ply_is_standard_3dgs_and_round_trips(tmp_path, up):
    g = _gaussians()
    path = save_ply(g, tmp_path / "a.ply", up=up)
    ply = PlyData.read(str(path))
    v = ply["vertex"]
    assert [p.name for p in v.properties][:3] == ["x", "y", "z"] and len(v) == len(g)
    np.testing.assert_allclose(v["opacity"], torch.logit(g.opacity[:, 0]).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack([v[f"scale_{i}"] for i in range(3)], 1), g.scaling.log().numpy(), atol=1e-5)
    xyz = g.xyz.numpy()
    expected = np.stack([xyz[:, 0], -xyz[:, 2], xyz[:, 1]], 1) if up == "y" else xyz
    np.testing.assert_allclose(np.stack([v["x"], v["y"], v["z"]], 1), expected, atol=1e-6)
    back = load_ply(path, up=up)
    for prop in ("xyz", "scaling", "opacity", "features"):
        torch.testing.assert_close(getattr(back, prop), getattr(g, prop), rtol=1e-4, atol=1e-5)
    # quaternions: equal up to sign
    dots = (back.rotation * g.rotation).sum(-1).abs()
    torch.testing.assert_close(dots, torch.ones_like(dots), atol=1e-5, rtol=0)


def test_y_up_rotation_turns_the_gaussian_frames_too(tmp_path):
    """The principal axes of each Gaussian must follow the point transform."""
    g = _gaussians(5)
    v = PlyData.read(str(save_ply(g, tmp_path / "a.ply")))["vertex"]
    q = torch.tensor(np.stack([v[f"rot_{i}"] for i in range(4)], 1), dtype=torch.float64)

    M = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64)
    torch.testing.assert_close(
        quaternion_to_matrix(q), M @ quaternion_to_matrix(g.rotation.double()), atol=1e-5, rtol=0
    )


def test_sequence_names_and_npz_round_trip(tmp_path):
    frames = [_gaussians(10, s) for s in range(3)] + [_gaussians(0, 9)]
    paths = save_ply_sequence(frames, tmp_path / "seq")
    assert [p.name for p in paths] == ["frame_0000.ply", "frame_0001.ply", "frame_0002.ply", "frame_0003.ply"]
    back = load_npz(save_npz(frames, tmp_path / "seq.npz"))
    assert len(back) == 4
    for a, b in zip(frames, back, strict=True):
        for name in ("_xyz", "_features_dc", "_scaling", "_rotation", "_opacity"):
            assert torch.equal(getattr(a, name), getattr(b, name))


def test_bad_files(tmp_path):
    (tmp_path / "x.ply").write_text("not a ply")
    with pytest.raises(ValueError, match="PLY"):
        load_ply(tmp_path / "x.ply")
    np.savez(tmp_path / "y.npz", a=np.zeros(1))
    with pytest.raises(ValueError, match="not an ss4d Gaussian sequence"):
        load_npz(tmp_path / "y.npz")
    with pytest.raises((ValueError, TypeCheckError), match="up"):
        save_ply(_gaussians(), tmp_path / "z.ply", up="x")  # type: ignore[arg-type]


def _ply_variant(g, path, *, text=False, drop_normals=False, extra_uchar=False, as_double=False):
    from plyfile import PlyElement

    src = PlyData.read(str(save_ply(g, path)))["vertex"].data
    names = [n for n in src.dtype.names if not (drop_normals and n in ("nx", "ny", "nz"))]
    dtype = [(n, "<f8" if as_double else "<f4") for n in names] + ([("red", "u1")] if extra_uchar else [])
    out = np.empty(len(src), dtype=dtype)
    for n in names:
        out[n] = src[n]
    if extra_uchar:
        out["red"] = 200
    PlyData([PlyElement.describe(out, "vertex")], text=text).write(str(path))
    return path


@pytest.mark.parametrize("variant", [dict(extra_uchar=True), dict(drop_normals=True), dict(text=True),
                                     dict(as_double=True, extra_uchar=True, text=True)])  # fmt: skip
def test_ply_reader_takes_any_property_types_ascii_and_no_normals(tmp_path, variant):
    """The old reader misread an extra uchar column and refused PLYs without normals or in ASCII."""
    g = _gaussians(20)
    back = load_ply(_ply_variant(g, tmp_path / "v.ply", **variant))
    for prop in ("xyz", "scaling", "opacity", "features"):
        torch.testing.assert_close(getattr(back, prop), getattr(g, prop), rtol=1e-4, atol=1e-5)


def test_ply_and_npz_with_nan_are_refused(tmp_path):
    from ss4d.errors import NonFiniteError

    g = _gaussians(4)
    g._xyz[0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        load_ply(save_ply(g, tmp_path / "n.ply"))
    with pytest.raises(NonFiniteError):
        load_npz(save_npz([g], tmp_path / "n.npz"))


def test_exp_scaling_round_trips_through_ply_and_npz(tmp_path):
    """The official ``scaling_activation='exp'``: PLY holds the activated log scale whatever the activation,
    so reading it back needs the same activation; the npz keeps the activation with the raw values."""
    from ss4d.representations import GaussianActivation

    act = GaussianActivation(scaling_activation="exp")
    base = _gaussians(30)
    g = Gaussians(base._xyz, base._features_dc, base._scaling, base._rotation, base._opacity, act)
    v = PlyData.read(str(save_ply(g, tmp_path / "e.ply")))["vertex"]
    np.testing.assert_allclose(np.stack([v[f"scale_{i}"] for i in range(3)], 1), g.scaling.log().numpy(), atol=1e-5)
    back = load_ply(tmp_path / "e.ply", activation=act)
    assert back.activation == act
    torch.testing.assert_close(back._scaling, g._scaling, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(back.scaling, g.scaling, rtol=1e-4, atol=1e-6)
    (seq,) = load_npz(save_npz([g], tmp_path / "e.npz"))
    assert seq.activation == act and torch.equal(seq._scaling, g._scaling)


def test_npz_scaling_activation_old_files_and_bad_values(tmp_path):
    path = save_npz([_gaussians(5)], tmp_path / "a.npz")
    with np.load(path) as f:
        members = {k: f[k] for k in f.files}
    old = {k: v for k, v in members.items() if k != "scaling_activation"}  # written before the member existed
    np.savez(tmp_path / "old.npz", **old)
    assert load_npz(tmp_path / "old.npz")[0].activation.scaling_activation == "softplus"
    np.savez(tmp_path / "bad.npz", **{**members, "scaling_activation": np.array("relu")})
    with pytest.raises(ValueError, match="scaling_activation 'relu'"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "neg.npz", **{**members, "activation": np.array([-1.0, 0.1, 9e-4, -0.5, -0.5, -0.5, 1, 1, 1])})
    with pytest.raises(ValueError, match="bad activation record"):
        load_npz(tmp_path / "neg.npz")
