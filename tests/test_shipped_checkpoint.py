"""The trained ss4d-tiny shipped in checkpoints/: loads, is small, and beats an untrained model on held-out data.

The held-out clip is regenerated from its seed (the evaluation set of docs/training.md, never trained on),
so the test compares against ground truth that the checkpoint cannot have memorised.
"""

from dataclasses import replace

import pytest
import torch

from ss4d.data import load_clip
from ss4d.data.synthetic import make_clip
from ss4d.pipelines import SS4DPipeline, build_tiny_pipeline, shipped_tiny_path

IOU_FLOOR = 0.25  # mean structure IoU with the GT over the first 8 frames (ss4d-tiny: 0.34; untrained: 0.15)
SEED = 100012  # examples/clips/synth_100012.gif (bounce, swing, bend, squash)


@pytest.fixture(scope="module")
def shipped():
    return SS4DPipeline.from_pretrained(shipped_tiny_path())


@pytest.fixture(scope="module")
def heldout():
    """The held-out clip as `ss4d data synth --frames 16` makes it (normalised over all 16 frames)."""
    return make_clip(SEED, num_frames=16, num_views=1)  # views do not change the video or the occupancy


def _structure_iou(pipe: SS4DPipeline, clip, frames: int = 8) -> list[float]:
    """Per-frame IoU of the sampled structure (12 steps, seed 0) with the clip's ground-truth voxels."""
    video = clip.video[:frames].float() / 255  # the first 8 frames, as in the first phase of training
    cond = pipe.encode_condition(pipe.preprocess(video).images)
    coords = pipe.sample_structure(cond, generator=torch.Generator().manual_seed(0), progress=False,
                                   params=replace(pipe.structure_sampler, num_steps=12))  # fmt: skip
    ious = []
    for t in range(frames):
        got = {tuple(c) for c in coords[coords[:, 0] == t, 1:].tolist()}
        truth = {tuple(c) for c in clip.coords[clip.coords[:, 0] == t, 1:].tolist()}
        ious.append(len(got & truth) / max(1, len(got | truth)))
    return ious


def test_shipped_folder_is_small_and_complete():
    folder = shipped_tiny_path()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 30 * 2**20, f"{folder} is {size / 2**20:.1f} MB (limit 30)"
    assert {p.name for p in folder.iterdir()} >= {"model_index.json", "structure_flow", "slat_flow", "slat_decoder"}


def test_example_clip_is_the_heldout_clip(heldout):
    gif = load_clip(f"examples/clips/synth_{SEED}.gif").frames
    alpha = heldout.video[:, 3].float() / 255
    assert torch.equal(gif[:, 3].round(), alpha.round())


def test_structure_matches_the_heldout_object_far_better_than_an_untrained_model(shipped, heldout):
    trained = _structure_iou(shipped, heldout)
    untrained = _structure_iou(build_tiny_pipeline(seed=0, structure_resolution=8, image_size=64), heldout)
    mean = sum(trained) / len(trained)
    assert mean > IOU_FLOOR and mean > sum(untrained) / len(untrained) + 0.1, (trained, untrained)
