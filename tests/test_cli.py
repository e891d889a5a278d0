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
    assert main([*args[:3], str(tmp_path / "out2"), *args[4:], "--scheduler", "Nope"]) == 2
    assert "not a registered scheduler" in capsys.readouterr().err


def test_help_shows_help_and_defaults_for_every_option():
    import argparse

    from ss4d.cli import build_parser

    def walk(parser, name):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub_name, sub in a.choices.items():
                    yield from walk(sub, f"{name} {sub_name}")
            else:
                yield name, parser, a

    for name, parser, action in walk(build_parser(), "ss4d"):
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        shown = parser.format_help()
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in " ".join(shown.split()), (name, action.dest)


def test_warnings_print_as_one_line_without_source_location(model_dir, tmp_path, capsys):
    clip = tmp_path / "rgb"
    clip.mkdir()
    for t, f in enumerate(moving_disc_clip(2, alpha=False)):  # RGB on white: the matte is estimated, with a warning
        Image.fromarray((f.permute(1, 2, 0) * 255).byte().numpy()).save(clip / f"{t}.png")
    assert main(["generate", str(clip), "-o", str(tmp_path / "o"), "--model", str(model_dir), "--steps", "1", "-q",
                 "--no-preview"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "alpha" in line]
    assert lines and lines[0].startswith("warning: no alpha channel") and ".py" not in err and "Warning" not in err


def test_non_empty_output_is_refused_before_any_compute(model_dir, tmp_path, capsys, monkeypatch):
    import ss4d.pipelines

    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("keep me")
    monkeypatch.setattr(ss4d.pipelines.SS4DPipeline, "from_pretrained", lambda *a, **k: pytest.fail("loaded"))
    assert main(["generate", str(_gif(tmp_path / "c.gif")), "-o", str(tmp_path / "o"), "--model", str(model_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "o" / "mine.txt").read_text() == "keep me"
