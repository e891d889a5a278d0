"""Euler on the pipeline's API reproduces, bit for bit, what the pipeline gave before ss4d.schedulers existed
(tests/fixtures/pipeline/euler_reference.json, made by make_euler_reference.py next to it)."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from ss4d.pipelines import SS4DPipeline, build_tiny_pipeline, shipped_tiny_path

from .tiny import moving_disc_clip

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "pipeline" / "euler_reference.json").read_text())


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def _check(out, ref: dict) -> None:
    coords = torch.cat([torch.cat([torch.full((len(c), 1), t, dtype=torch.int32), c.int()], 1)
                        for t, c in enumerate(out.coords)])  # fmt: skip
    xyz = torch.cat([g.xyz for g in out.gaussians])
    feats = torch.cat([g._features_dc.reshape(len(g), -1) for g in out.gaussians])
    assert [list(coords.shape), list(xyz.shape)] == [ref["shapes"]["coords"], ref["shapes"]["xyz"]]
    assert xyz[:4].tolist() == ref["head"]["xyz"] and feats[:4].tolist() == ref["head"]["features"]
    assert {"coords": _digest(coords), "xyz": _digest(xyz), "features": _digest(feats)} == ref["sha256"]


@pytest.mark.parametrize("case", ["tiny", "shipped"])
def test_euler_reproduces_the_previous_sampler_bit_for_bit(case):
    if case == "tiny":
        out = build_tiny_pipeline(seed=0, steps=4)(moving_disc_clip(4), seed=3, progress=False)
    else:
        pipe = SS4DPipeline.from_pretrained(shipped_tiny_path())
        out = pipe("examples/clips/synth_100012.gif", seed=0, num_inference_steps=3, max_frames=3, progress=False)
    _check(out, REFERENCE[case])
