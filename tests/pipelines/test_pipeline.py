import json
import shutil

import pytest
import torch
from PIL import Image

from ss4d.data import load_clip
from ss4d.errors import CheckpointMismatchError
from ss4d.pipelines import SS4DPipeline, preprocess_clip
from ss4d.representations import load_npz, load_ply

from .tiny import moving_disc_clip, tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def test_end_to_end_is_deterministic_and_saves(pipe, tmp_path):
    clip = moving_disc_clip(8)
    out = pipe(clip, seed=3, progress=False)
    again = pipe(clip, seed=3, progress=False)
    assert out.num_frames == 8 and all(len(g) > 0 for g in out.gaussians)
    for a, b in zip(out.gaussians, again.gaussians, strict=True):
        assert torch.equal(a._xyz, b._xyz)
    assert set(out.timings) == {"preprocess", "condition", "structure", "slat", "decode"}
    written = out.save(tmp_path / "run", preview_size=32)
    assert len(written["ply"]) == 8 and (tmp_path / "run" / "summary.json").is_file()
    assert written["preview"].endswith((".mp4", ".gif"))
    assert len(load_npz(written["npz"])) == 8
    torch.testing.assert_close(load_ply(written["ply"][0]).xyz, out.gaussians[0].xyz, atol=1e-5, rtol=1e-4)
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("frame_")) == sorted(
        ["gaussians.npz", "summary.json", written["preview"].rsplit("/", 1)[-1]]
    )


@pytest.mark.parametrize("T", [1, 5])
def test_odd_and_single_frame_clips(pipe, T):
    out = pipe(moving_disc_clip(T), progress=False)
    assert out.num_frames == T and len(out.coords) == T


def test_own_structure_and_stage_methods(pipe):
    pre = pipe.preprocess(moving_disc_clip(4))
    cond = pipe.encode_condition(pre.images)
    coords = torch.tensor([[t, 3, 4, 4] for t in range(4)] + [[t, 4, 4, 4] for t in range(4)]).int()
    out = pipe(moving_disc_clip(4), structure=coords, progress=False)
    assert [c.shape[0] for c in out.coords] == [2, 2, 2, 2]
    slat = pipe.sample_slat(cond, coords[torch.argsort(coords[:, 0], stable=True)], progress=False)
    assert slat.layout.num_frames == 4 and len(pipe.decode(slat)) == 4
    with pytest.raises(ValueError, match="every frame"):
        pipe(moving_disc_clip(4), structure=coords[coords[:, 0] < 2], progress=False)


def test_save_and_load_pipeline_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["components"]["slat_flow"] == "SLatFlow4D"
    loaded = SS4DPipeline.from_pretrained(tmp_path / "p")
    clip = moving_disc_clip(4)
    a, b = pipe(clip, seed=1, progress=False), loaded(clip, seed=1, progress=False)
    assert torch.equal(a.gaussians[0]._xyz, b.gaussians[0]._xyz)


def test_bad_model_folders(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    with pytest.raises(FileNotFoundError, match="no such pipeline folder"):
        SS4DPipeline.from_pretrained(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "p", bad)
    index = json.loads((bad / "model_index.json").read_text())
    index["components"]["slat_flow"] = "os.system"
    (bad / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="allowlist"):
        SS4DPipeline.from_pretrained(bad)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tmp_path / "p", corrupt)
    (corrupt / "slat_flow" / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(Exception, match="(?i)safetensor|header|deserial"):
        SS4DPipeline.from_pretrained(corrupt)
    wrong = tmp_path / "wrong"
    shutil.copytree(tmp_path / "p", wrong)
    shutil.copy(wrong / "structure_flow" / "model.safetensors", wrong / "slat_flow" / "model.safetensors")
    with pytest.raises(CheckpointMismatchError):
        SS4DPipeline.from_pretrained(wrong)


def test_bad_inputs_fail_early(pipe, tmp_path):
    with pytest.raises(FileNotFoundError):
        pipe(tmp_path / "missing.mp4", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        pipe(tmp_path / "empty", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "0.png").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        pipe(tmp_path / "junk", progress=False)
    (tmp_path / "sizes").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "sizes" / "0.png")
    Image.new("RGB", (20, 16)).save(tmp_path / "sizes" / "1.png")
    with pytest.raises(ValueError, match="different sizes"):
        pipe(tmp_path / "sizes", progress=False)
    clear = moving_disc_clip(3)
    clear[1, 3] = 0
    with pytest.raises(ValueError, match=r"frames \[1\] have an empty object mask"):
        pipe(clear, progress=False)
    with pytest.raises(ValueError, match="max_frames"):
        pipe(moving_disc_clip(3), max_frames=10**9, progress=False)
    with pytest.raises(ValueError, match="C = 3"):
        pipe(torch.rand(3, 2, 16, 16), progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe(torch.rand(3, 3, 16, 16) * 5, progress=False)


def test_folder_and_gif_inputs_and_background_estimation(tmp_path):
    clip = moving_disc_clip(4, alpha=False)
    (tmp_path / "frames").mkdir()
    for t in (10, 2, 1, 0):  # natural sort: 0, 1, 2, 10
        Image.fromarray((clip[min(t, 3)].permute(1, 2, 0) * 255).byte().numpy()).save(tmp_path / "frames" / f"f{t}.png")
    loaded = load_clip(tmp_path / "frames")
    assert loaded.num_frames == 4 and not loaded.has_alpha
    with pytest.warns(UserWarning, match="uniform background"):
        pre = preprocess_clip(loaded, 32)
    assert pre.mask_source == "uniform-background" and pre.images.shape == (4, 3, 32, 32)
    frames = [Image.fromarray((f.permute(1, 2, 0) * 255).byte().numpy()) for f in clip]
    frames[0].save(tmp_path / "c.gif", save_all=True, append_images=frames[1:], duration=100)
    gif = load_clip(tmp_path / "c.gif", stride=2)
    assert gif.num_frames == 2 and gif.fps == pytest.approx(5.0)
    noisy = torch.rand(2, 3, 24, 24)
    with pytest.raises(ValueError, match="not uniform"):
        preprocess_clip(load_clip(noisy), 32)


def test_preprocess_crops_the_union_box_and_premultiplies():
    clip = load_clip(moving_disc_clip(4, size=64))
    pre = preprocess_clip(clip, 32)
    x0, y0, x1, y1 = pre.bbox
    assert x1 - x0 == y1 - y0  # square
    assert pre.mask_source == "alpha"
    assert float(pre.images[pre.alpha.expand_as(pre.images) == 0].abs().max()) == 0.0  # black outside the object
