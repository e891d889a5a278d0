import pytest
import torch

from ss4d.cli import main
from ss4d.data.synthetic import SyntheticClip, make_clip, normalise_scene, random_scene, scene_sdf


def test_clips_are_deterministic_by_seed():
    a = make_clip(3, num_frames=2, resolution=8, image_size=24, num_views=2)
    b = make_clip(3, num_frames=2, resolution=8, image_size=24, num_views=2)
    assert torch.equal(a.video, b.video) and torch.equal(a.coords, b.coords) and torch.equal(a.features, b.features)
    c = make_clip(4, num_frames=2, resolution=8, image_size=24, num_views=2)
    assert not torch.equal(a.video, c.video)


def test_normalised_once_per_sequence_into_the_unit_cube():
    scene = normalise_scene(random_scene(5), 6)
    axis = torch.linspace(-0.6, 0.6, 40)
    pts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    extents = []
    for t in range(6):
        inside = pts[scene_sdf(scene, pts, t / 6)[0] < 0]
        assert inside.shape[0] > 0
        assert float(inside.abs().max()) <= 0.5  # every frame inside the cube
        extents.append(inside.amax(0) - inside.amin(0))
    # the union over frames fills the cube (0.9 target): one fit for the clip, not one per frame
    assert 0.75 < float(torch.stack(extents).max()) <= 1.0


def test_occupancy_and_features_shapes_and_visibility(tmp_path):
    clip = make_clip(1, num_frames=3, resolution=8, image_size=32, num_views=3)
    T = clip.meta["num_frames"]
    assert clip.video.shape == (T, 4, 32, 32) and clip.views.shape == (T, 3, 4, 32, 32)
    assert set(clip.coords[:, 0].tolist()) == set(range(T))
    assert int(clip.coords[:, 1:].min()) >= 0 and int(clip.coords[:, 1:].max()) < 8
    assert clip.features.shape == (clip.coords.shape[0], 6) and clip.features.dtype == torch.float16
    assert 0 < float((clip.visible_views > 0).float().mean()) <= 1
    everything = make_clip(1, num_frames=3, resolution=8, image_size=32, num_views=3, aggregate="all")
    assert bool((everything.visible_views == 3).all())
    back = SyntheticClip.load(clip.save(tmp_path / "c"))
    assert torch.equal(back.coords, clip.coords) and torch.equal(back.views, clip.views) and back.meta["seed"] == 1


def test_cli_data_synth(tmp_path):
    code = main(["data", "synth", "--num", "2", "--frames", "2", "--out", str(tmp_path), "--resolution", "8",
                 "--size", "24", "--views", "2", "-q"])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_000000", "clip_000001"]
    assert main(["data", "synth", "--num", "0", "--out", str(tmp_path)]) == 2


def test_cli_data_synth_numbers_clips_by_seed_and_reports_each(tmp_path, capsys):
    """Clip i is make_clip(seed + i) with the command's settings, saved as clip_{seed + i}, one line each."""
    code = main(["data", "synth", "--num", "2", "--seed", "5", "--frames", "2", "--out", str(tmp_path),
                 "--resolution", "8", "--size", "16", "--views", "2", "--world", "families"])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_000005", "clip_000006"]
    for i, seed in enumerate((5, 6)):
        clip = SyntheticClip.load(tmp_path / f"clip_{seed:06d}")
        ref = make_clip(seed, num_frames=2, resolution=8, image_size=16, num_views=2, world="families")
        assert torch.equal(clip.coords, ref.coords) and torch.equal(clip.features, ref.features)
        assert clip.meta == {**ref.meta, "focal": ref.focal}
        assert lines[i] == f"clip {i + 1}/2: seed {seed}, {ref.coords.shape[0]} voxels, {ref.meta['motions']}"


def test_dinov2_patch_features(tiny_dino):
    from ss4d.models.condition import normalize_for_dinov2
    from ss4d.models.features import DinoV2Features, feature_extractor

    extract = DinoV2Features(tiny_dino, image_size=56)
    image = torch.rand(4, 32, 32)
    maps = extract(image)
    assert maps.shape == (32, 4, 4)
    pixels = normalize_for_dinov2((image[:3] * image[3:4])[None], 56)
    hidden = extract.encoder.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(maps.flatten(1).T, hidden[0, 5:])  # patch tokens only, before the final norm
    clip = make_clip(3, num_frames=2, resolution=8, image_size=32, num_views=2, features=extract)
    assert clip.features.shape[1] == 32
    with pytest.raises(ValueError, match="--dinov2"):
        feature_extractor("dinov2")
    with pytest.raises(ValueError, match="unknown feature extractor"):
        feature_extractor("clip")
