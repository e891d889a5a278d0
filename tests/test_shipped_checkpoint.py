"""The trained ss4d-tiny shipped in checkpoints/: loads, is small, and beats an untrained model on held-out data.

The held-out clip is regenerated from its seed (the evaluation set of docs/training.md, never trained on),
so the test compares against ground truth that the checkpoint cannot have memorised.
"""

import pytest
import torch

from ss4d.data import load_clip
from ss4d.data.synthetic import make_clip
from ss4d.pipelines import SS4DPipeline, build_tiny_pipeline, shipped_tiny_path

IOU_FLOOR = 0.3  # mean structure IoU with the ground truth over the 8 frames
CENTROID_TOLERANCE = 1.5  # voxels (16^3 grid), mean over frames
SEED = 100012  # examples/clips/synth_100012.gif (bounce, swing, bend, squash)


@pytest.fixture(scope="module")
def shipped():
    return SS4DPipeline.from_pretrained(shipped_tiny_path())


@pytest.fixture(scope="module")
def heldout():
    return make_clip(SEED, num_frames=8)


def _iou_per_frame(out, clip) -> list[float]:
    ious = []
    for t, coords in enumerate(out.coords):
        got = {tuple(c) for c in coords.tolist()}
        truth = {tuple(c) for c in clip.coords[clip.coords[:, 0] == t, 1:].tolist()}
        ious.append(len(got & truth) / max(1, len(got | truth)))
    return ious


def test_shipped_folder_is_small_and_complete():
    folder = shipped_tiny_path()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 30 * 2**20, f"{folder} is {size / 2**20:.1f} MB (limit 30)"
    assert {p.name for p in folder.iterdir()} >= {"model_index.json", "structure_flow", "slat_flow", "slat_decoder"}


def test_example_clip_is_the_heldout_clip(heldout):
    gif = load_clip(f"examples/clips/synth_{SEED}.gif").frames[:8]
    alpha = heldout.video[:, 3].float() / 255
    assert torch.equal(gif[:, 3].round(), alpha.round())


def test_structure_follows_the_input_better_than_an_untrained_model(shipped, heldout):
    video = heldout.video.float() / 255
    trained = shipped(video, seed=0, num_steps=12, progress=False)
    untrained = build_tiny_pipeline(seed=0)(video, seed=0, num_steps=12, progress=False)
    iou_trained, iou_untrained = _iou_per_frame(trained, heldout), _iou_per_frame(untrained, heldout)
    mean = sum(iou_trained) / len(iou_trained)
    assert mean > IOU_FLOOR and mean > sum(iou_untrained) / len(iou_untrained) + 0.1, (iou_trained, iou_untrained)
    # motion: the generated voxels' centroid moves with the ground truth's over the clip
    centre = torch.stack([c.float().mean(0) for c in trained.coords])
    truth = torch.stack([heldout.coords[heldout.coords[:, 0] == t, 1:].float().mean(0) for t in range(8)])
    assert (centre - truth).norm(dim=-1).mean() < CENTROID_TOLERANCE
