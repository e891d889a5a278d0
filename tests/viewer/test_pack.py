import json
import re

import numpy as np
import pytest
import torch

from ss4d.export.structure import Structure, load_structure, save_structure
from ss4d.viewer import build_viewer_html, decode_frame, decode_voxels, encode_sequence, read_viewer_html, splat_frame
from ss4d.viewer.build import viewer_from_folder, voxels_from_gaussians

from ..export.gaussians import random_gaussians


def test_quantised_frames_round_trip_within_their_steps():
    frames = [splat_frame(random_gaussians(257, seed=s)) for s in range(3)]
    meta, blob = encode_sequence(frames)
    for f, fm in zip(frames, meta["frames"], strict=True):
        keep = f.opacity > 1 / 255
        d = decode_frame(fm, blob)
        assert len(d) == keep.sum() and fm["offset"] % 4 == 0
        pos_step = (np.array(fm["pos_max"]) - fm["pos_min"]) / 65535
        assert (np.abs(d.xyz - f.xyz[keep]) <= pos_step / 2 + 1e-6).all()
        log_step = (np.array(fm["log_scale_max"]) - fm["log_scale_min"]) / 255
        assert (np.abs(np.log(d.scales) - np.log(f.scales[keep])) <= log_step / 2 + 1e-5).all()
        assert np.abs(d.opacity - f.opacity[keep]).max() <= 0.5 / 255 + 1e-6
        assert np.abs(d.rgb - f.rgb[keep]).max() <= 0.5 / 255 + 1e-6
        cos = np.abs((d.quats * f.quats[keep]).sum(1))
        assert 2 * np.degrees(np.arccos(np.clip(cos, 0, 1))).max() < 3.0  # 8 bits per component


def test_voxels_round_trip_and_bad_voxels_are_rejected():
    vox = [np.array([[0, 1, 2], [15, 15, 15]]), np.zeros((0, 3), int)]
    meta, blob = encode_sequence([splat_frame(random_gaussians(5))] * 2, vox, 16)
    for v, vm in zip(vox, meta["voxels"], strict=True):
        np.testing.assert_array_equal(decode_voxels(vm, blob), v)
    with pytest.raises(ValueError, match="0..15"):
        encode_sequence([splat_frame(random_gaussians(5))], [np.array([[16, 0, 0]])], 16)


def test_page_is_self_contained_and_carries_the_sequence(tmp_path):
    frames = [random_gaussians(50, seed=s) for s in range(2)]
    images = torch.rand(2, 3, 40, 40)
    save_structure(tmp_path / "structure.npz", [torch.tensor([[1, 2, 3]]), torch.tensor([[3, 2, 1]])], 8, images, 12.0)
    structure = load_structure(tmp_path / "structure.npz")
    assert structure.fps == 12.0 and structure.images.shape == (2, 40, 40, 3)
    html = build_viewer_html(frames, structure=structure, title="a<b>")
    assert "{{" not in html and "<title>ab · ss4d viewer</title>" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "import(" not in html  # nothing fetched
    meta, blob = read_viewer_html(html)
    assert meta["fps"] == 12.0 and len(meta["frames"]) == 2 and meta["resolution"] == 8
    assert all(u.startswith("data:image/jpeg;base64,") for u in meta["images"])
    np.testing.assert_array_equal(decode_voxels(meta["voxels"][1], blob), [[3, 2, 1]])


def test_view_of_a_folder_without_structure_uses_gaussian_centres(tmp_path):
    from ss4d.representations import save_npz

    frames = [random_gaussians(40, seed=s) for s in range(2)]
    save_npz(frames, tmp_path / "gaussians.npz")
    (tmp_path / "summary.json").write_text(json.dumps({"resolution": 16}))
    meta, blob = read_viewer_html(viewer_from_folder(tmp_path).read_text())
    expected = voxels_from_gaussians(frames, 16)
    np.testing.assert_array_equal(decode_voxels(meta["voxels"][0], blob), expected[0])
    assert meta["images"] == [] and meta["fps"] == 8.0
    with pytest.raises(FileNotFoundError, match="gaussians.npz"):
        viewer_from_folder(tmp_path / "nothing")


def test_frame_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="structure has 1 frames"):
        build_viewer_html([random_gaussians(5)] * 2, structure=Structure([np.zeros((0, 3))], 4, None, 8.0))


def test_max_gaussians_keeps_the_most_visible():
    g = random_gaussians(200, seed=3)
    meta, blob = read_viewer_html(build_viewer_html([g], max_gaussians=50))
    assert meta["frames"][0]["n"] == 50
    f = splat_frame(g)
    score = f.opacity * np.prod(f.scales, axis=1) ** (2 / 3)
    kept = decode_frame(meta["frames"][0], blob)
    dist = np.linalg.norm(kept.xyz[:, None] - f.xyz[None], axis=-1).argmin(1)  # which originals survived
    assert score[dist].min() >= np.sort(score)[-50] * 0.999
    with pytest.raises(ValueError, match="max_gaussians"):
        build_viewer_html([g], max_gaussians=0)
