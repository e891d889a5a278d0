import math

import numpy as np
import pytest
import torch

from ss4d.export.mesh import density_grid, gaussians_to_mesh, save_mesh_sequence

from .gaussians import ball_of_gaussians

trimesh = pytest.importorskip("trimesh", reason="trimesh not installed (pip install 'ss4d[mesh]')")
pytest.importorskip("skimage", reason="scikit-image not installed (pip install 'ss4d[mesh]')")


def test_density_grid_matches_the_direct_sum():
    g = ball_of_gaussians(radius=0.1, spacing=0.05)
    res = 24
    density, colour = density_grid(g, res)
    # slow reference: every Gaussian at every cell (no window)
    lo, cell = -0.55, 1.1 / res
    centres = (torch.arange(res) + 0.5) * cell + lo
    grid = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    d = grid[:, None] - g.xyz[None]
    ref = (g.opacity[:, 0] * torch.exp(-0.5 * (d**2).sum(-1) / g.scaling[:, 0] ** 2)).sum(1).view(res, res, res)
    # each Gaussian is summed over whole cells within 3 sigma: a cell it misses gets < exp(-4.5) = 0.011 of it
    assert (density - ref).abs().max() < 0.011 and (density - ref).abs().mean() < 1e-4
    rgb = colour / density.clamp_min(1e-8)[..., None]
    inside = density > 0.1
    torch.testing.assert_close(rgb[inside], torch.tensor([0.8, 0.3, 0.1]).expand_as(rgb[inside]), atol=1e-4, rtol=0)


def test_ball_mesh_is_closed_round_and_coloured():
    g = ball_of_gaussians(radius=0.25)
    mesh = gaussians_to_mesh(g, resolution=48, up="z")
    assert mesh.is_watertight and mesh.volume > 0  # outward normals
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(r.mean() - 0.27) < 0.03 and r.std() < 0.01  # the level set sits just outside the centres
    rgb = mesh.visual.vertex_colors[:, :3] / 255
    assert np.abs(rgb - [0.8, 0.3, 0.1]).max() < 0.02
    y_up = gaussians_to_mesh(g, resolution=48)
    np.testing.assert_allclose(y_up.vertices, mesh.vertices @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]]).T,
                               atol=1e-9)  # fmt: skip


def test_glb_files_load_in_trimesh_and_pygltflib(tmp_path):
    pygltflib = pytest.importorskip("pygltflib")
    frames = [ball_of_gaussians(radius=r) for r in (0.15, 0.25)]
    stats = save_mesh_sequence(frames, tmp_path, resolution=32)
    assert [s.path.name for s in stats] == ["frame_0000.glb", "frame_0001.glb"]
    assert stats[0].triangles < stats[1].triangles and all(s.seconds > 0 for s in stats)
    for s in stats:
        loaded = trimesh.load(s.path, force="mesh")
        assert len(loaded.faces) == s.triangles and loaded.is_watertight
        gltf = pygltflib.GLTF2().load(str(s.path))
        prim = gltf.meshes[0].primitives[0]
        assert prim.attributes.COLOR_0 is not None and gltf.accessors[prim.indices].count == 3 * s.triangles
    vol = [trimesh.load(s.path, force="mesh").volume for s in stats]
    assert vol[1] / vol[0] == pytest.approx((0.27 / 0.17) ** 3, rel=0.25)


def test_no_surface_is_a_clear_error():
    g = ball_of_gaussians(radius=0.1)
    with pytest.raises(ValueError, match="no surface at level 50"):
        gaussians_to_mesh(g, resolution=16, level=50.0)
    assert math.isfinite(float(density_grid(g, 16)[0].max()))


def test_animated_glb_shows_one_frame_at_a_time(tmp_path):
    pygltflib = pytest.importorskip("pygltflib")
    frames = [ball_of_gaussians(radius=r) for r in (0.1, 0.15, 0.2)]
    stats = save_mesh_sequence(frames, tmp_path, resolution=24, animated_fps=4.0)
    path = tmp_path / "animated.glb"
    scene = trimesh.load(path)
    assert [len(g.faces) for g in scene.geometry.values()] == [s.triangles for s in stats]
    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()

    def read(index: int, dtype: str, width: int) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        return np.frombuffer(blob, dtype, acc.count * width, view.byteOffset).reshape(acc.count, width)

    anim = gltf.animations[0]
    assert [c.target.node for c in anim.channels] == [0, 1, 2] and {c.target.path for c in anim.channels} == {"scale"}
    times = read(anim.samplers[0].input, "<f4", 1)[:, 0]
    np.testing.assert_allclose(times, [0, 0.25, 0.5, 0.75])
    shown = np.stack([read(s.output, "<f4", 3)[:, 0] for s in anim.samplers])  # [node, key]
    np.testing.assert_array_equal(shown[:, :3], np.eye(3))  # frame i's node is the only one at scale 1 in frame i
    assert all(s.interpolation == "STEP" for s in anim.samplers)
    first = read(gltf.meshes[0].primitives[0].attributes.POSITION, "<f4", 3)
    np.testing.assert_allclose(np.sort(first, axis=0), np.sort(trimesh.load(stats[0].path, force="mesh").vertices,
                                                               axis=0), atol=1e-6)  # fmt: skip
