"""benchmarks/gaussian_fit_ceiling.py: its fit beats its own starting point, and its dense views re-render the
clip's object (the script refuses a clip whose stored view it cannot reproduce)."""

from dataclasses import replace

import pytest

from benchmarks.gaussian_fit_ceiling import _cameras, dense_views, fit_frame
from ss4d.data.synthetic import make_clip
from ss4d.eval.baselines import gaussians_on_voxels, gt_voxel_colours
from ss4d.eval.evaluate import Prediction, _white, score


@pytest.fixture(scope="module")
def clip():
    c = make_clip(100003, num_frames=2, num_views=2, image_size=32, world="families-heldout")
    c.meta["num_frames_total"] = 2
    return c


def test_fit_improves_on_the_coloured_voxels_it_starts_from(clip):
    R = int(clip.meta["resolution"])
    cams = _cameras(clip, 0)
    targets = [_white(clip.views[0, v]) for v in range(2)]
    fitted = fit_frame(clip, 0, cams, targets, gaussians=2, steps=25, lr=0.05, voxel_size=1.5, seed=0)
    one = replace(clip, views=clip.views[:1], viewmats=clip.viewmats[:1], coords=clip.coords[clip.coords[:, 0] == 0])
    start = gaussians_on_voxels(one.coords[:, 1:], R, gt_voxel_colours(one, 0))
    assert len(fitted) == 2 * len(start)
    assert score(Prediction([fitted]), one)["psnr"] > score(Prediction([start]), one)["psnr"] + 1.0


def test_dense_views_render_the_same_object(clip):
    cams, images = dense_views(clip, 1, 3)
    assert len(cams) == len(images) == 3 and images[0].shape == (3, 32, 32)
    assert all((im < 0.99).any() for im in images)  # the object is in every view
    broken = replace(clip, meta={**clip.meta, "seed": 7})  # another object: the stored view is not reproduced
    with pytest.raises(SystemExit, match="does not reproduce"):
        dense_views(broken, 1, 1)
