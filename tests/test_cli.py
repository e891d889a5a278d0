import json

import pytest
from PIL import Image

from ss4d.cli import main

from .pipelines.tiny import moving_disc_clip, tiny_pipeline


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_pipeline().save_pretrained(folder)
    return folder


def _gif(path, T=6):
    frames = [
        Image.fromarray((f[:3].permute(1, 2, 0) * 255).byte().numpy()).convert("RGBA") for f in moving_disc_clip(T)
    ]
    for im, f in zip(frames, moving_disc_clip(T), strict=True):
        im.putalpha(Image.fromarray((f[3] * 255).byte().numpy()))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, disposal=2)
    return path


def test_generate_render_info(model_dir, tmp_path, capsys):
    clip = _gif(tmp_path / "disc.gif")
    assert (
        main(["generate", str(clip), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--steps", "2", "-q"]) == 0
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_frames"] == 6 and len(list((tmp_path / "out").glob("frame_*.ply"))) == 6
    assert "preview" in summary["files"]
    assert main(["render", str(tmp_path / "out" / "gaussians.npz"), "-o", str(tmp_path / "r.gif"), "--size", "32"]) == 0
    assert (tmp_path / "r.gif").is_file()
    assert main(["info"]) == 0
    assert "sparse-conv backends on cpu" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line_and_a_hint(model_dir, tmp_path, capsys):
    code = main(["generate", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o"), "--model", str(model_dir), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[0].startswith("error:") and err[1].startswith("hint:")
    assert not (tmp_path / "o").exists()  # nothing written on bad input
    assert main(["generate", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "nomodel")]) == 2
    assert main(["render", str(tmp_path / "nothing.npz"), "-o", str(tmp_path / "x.gif")]) == 2
    with pytest.raises(SystemExit) as e:
        main(["generate"])
    assert e.value.code == 2


def test_generate_with_another_scheduler(model_dir, tmp_path, capsys):
    clip = _gif(tmp_path / "disc.gif", T=2)
    args = ["generate", str(clip), "-o", str(tmp_path / "out"), "--model", str(model_dir), "-q", "--no-preview"]
    assert main([*args, "--num-inference-steps", "1", "--scheduler", "FlowMatchHeunScheduler"]) == 0
    assert len(list((tmp_path / "out").glob("frame_*.ply"))) == 2
    assert main([*args, "--scheduler", "Nope"]) == 2
    assert "not a registered scheduler" in capsys.readouterr().err
