"""`ss4d generate --viewer --mesh --splats`, `ss4d view`, `ss4d export-mesh`, `ss4d export-splats`."""

import pytest

from ss4d.cli import main
from ss4d.export import read_compressed_ply, read_splat
from ss4d.representations import save_npz

from ..test_cli import _gif, model_dir  # noqa: F401 - the module-scoped tiny pipeline fixture
from .gaussians import ball_of_gaussians


def test_generate_with_viewer_mesh_and_splats(model_dir, tmp_path):  # noqa: F811
    pytest.importorskip("trimesh")
    clip = _gif(tmp_path / "disc.gif", T=4)
    out = tmp_path / "out"
    args = ["generate", str(clip), "-o", str(out), "--model", str(model_dir), "--steps", "1", "-q", "--no-preview"]
    assert main([*args, "--viewer", "--mesh", "--mesh-level", "0.1", "--splats", "compressed-ply,splat"]) == 0
    assert (out / "viewer.html").stat().st_size > 1000 and (out / "structure.npz").is_file()
    assert len(list((out / "splats").glob("frame_*.compressed.ply"))) == 4
    assert len(read_splat((out / "splats" / "frame_0003.splat").read_bytes())["xyz"]) > 0
    assert len(list((out / "mesh").glob("frame_*.glb"))) == 4 and (out / "mesh" / "animated.glb").is_file()


def test_generate_extras_are_part_of_the_output_transaction(model_dir, tmp_path, capsys):  # noqa: F811
    pytest.importorskip("trimesh")
    clip = _gif(tmp_path / "disc.gif", T=2)
    out = tmp_path / "out"
    args = ["generate", str(clip), "-o", str(out), "--model", str(model_dir), "--steps", "1", "-q", "--no-preview"]
    assert main([*args, "--viewer", "--mesh", "--mesh-level", "1e9"]) == 2  # meshing, the last step, fails
    assert "no surface at level" in capsys.readouterr().err
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())  # nothing left


def test_view_export_mesh_and_splats_on_a_folder(tmp_path, capsys):
    pytest.importorskip("trimesh")
    save_npz([ball_of_gaussians(radius=r) for r in (0.15, 0.2)], tmp_path / "gaussians.npz")
    assert main(["view", str(tmp_path), "-o", str(tmp_path / "v.html"), "--fps", "4"]) == 0
    assert (tmp_path / "v.html").is_file()
    assert main(["export-splats", str(tmp_path), "--format", "compressed-ply"]) == 0
    decoded = read_compressed_ply((tmp_path / "splats" / "frame_0001.compressed.ply").read_bytes())
    assert len(decoded["xyz"]) == len(ball_of_gaussians(radius=0.2))
    assert main(["export-mesh", str(tmp_path), "--resolution", "32", "--animated"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "frame_0001.glb:" in lines[-2] and "triangles" in lines[-2]
    assert lines[-1].endswith("animated.glb: all 2 frames at 8 fps")


@pytest.mark.parametrize("command", ["view", "export-mesh", "export-splats"])
def test_a_folder_without_gaussians_exits_2(command, tmp_path, capsys):
    assert main([command, str(tmp_path / "missing")]) == 2
    assert "gaussians.npz: no such file" in capsys.readouterr().err


def test_unknown_splat_format_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export-splats", str(tmp_path), "--format", "spz"])
    assert e.value.code == 2 and "unknown format(s) ['spz']" in capsys.readouterr().err
