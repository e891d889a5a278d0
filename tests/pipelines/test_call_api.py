"""The pipeline call's diffusers-style arguments."""

import pytest
import torch

from ss4d.pipelines import SS4DLatents
from ss4d.schedulers import FlowMatchHeunScheduler

from .tiny import moving_disc_clip, tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def clip():
    return moving_disc_clip(2)


def _xyz(out):
    return torch.cat([g.xyz for g in out.gaussians])


def test_generator_latents_and_num_samples(pipe, clip):
    first = pipe(clip, generator=torch.Generator().manual_seed(5), progress=False)
    assert torch.equal(_xyz(first), _xyz(pipe(clip, seed=5, progress=False)))
    both = pipe(clip, generator=torch.Generator().manual_seed(5), num_samples=2, progress=False)
    assert len(both) == 2 and torch.equal(_xyz(both[0]), _xyz(first))
    assert not torch.equal(_xyz(both[1]), _xyz(first))
    # the same initial noise, given explicitly, gives the same sample
    c = pipe.structure_flow.config
    g = torch.Generator().manual_seed(5)
    latents = torch.randn((1, 2, c.in_channels) + (c.resolution,) * 3, generator=g)
    slat = pipe(clip, generator=torch.Generator().manual_seed(5), output_type="latent", progress=False)
    assert isinstance(slat, SS4DLatents) and slat.num_frames == 2
    slat_latents = torch.randn((slat.slat.num_voxels, pipe.slat_flow.config.in_channels), generator=g)
    given = pipe(clip, latents=latents, slat_latents=slat_latents, progress=False)
    assert torch.equal(_xyz(given), _xyz(first))
    (gaussians,) = pipe(clip, seed=5, return_dict=False, progress=False)
    assert torch.equal(torch.cat([x.xyz for x in gaussians]), _xyz(first))
    assert torch.equal(pipe.decode(slat.slat)[0].xyz, first.gaussians[0].xyz)


def test_callback_sees_every_step_of_both_stages(pipe, clip):
    seen = []

    def callback(p, i, t, kwargs):
        assert p is pipe and kwargs["latents"].shape == kwargs["pred_original_sample"].shape
        seen.append((kwargs["stage"], i, round(t, 4)))

    pipe(clip, num_inference_steps=3, callback_on_step_end=callback, progress=False)
    grid = [round(3 * t / (1 + 2 * t), 4) for t in (1, 2 / 3, 1 / 3)]
    assert seen == [("structure", i, t) for i, t in enumerate(grid)] + [("slat", i, t) for i, t in enumerate(grid)]


def test_guidance_per_stage_and_deprecated_names(pipe, clip):
    calls = {"structure": 0}
    flow = pipe.structure_flow
    original = flow.forward
    flow.forward = lambda *a, **k: (calls.__setitem__("structure", calls["structure"] + 1), original(*a, **k))[1]
    try:
        pipe(clip, num_inference_steps=4, guidance_scale=0.0, progress=False)
        assert calls["structure"] == 4  # no unconditional pass without guidance
        calls["structure"] = 0
        pipe(clip, num_inference_steps=4, guidance_scale=2.0, guidance_interval=(0.0, 1.0), progress=False)
        assert calls["structure"] == 8
    finally:
        del flow.forward
    new = pipe(clip, num_inference_steps=2, guidance_scale=1.5, slat_guidance_scale=0.5, progress=False)
    with pytest.warns(DeprecationWarning) as record:
        old = pipe(clip, num_steps=2, cfg_strength=1.5, slat_cfg_strength=0.5, progress=False)
    assert sorted(str(w.message).split("`")[1] for w in record) == ["cfg_strength", "num_steps", "slat_cfg_strength"]
    assert torch.equal(_xyz(new), _xyz(old))
    with pytest.raises(TypeError, match="unexpected keyword"):
        pipe(clip, num_stepz=2, progress=False)


def test_heun_runs_and_bad_arguments_fail_before_work(pipe, clip):
    heun = FlowMatchHeunScheduler.from_config(pipe.slat_scheduler.config)
    before = pipe.slat_scheduler
    pipe.slat_scheduler = heun
    try:
        out = pipe(clip, num_inference_steps=2, progress=False)
        assert out.num_frames == 2 and len(heun.timesteps) == 3
    finally:
        pipe.slat_scheduler = before
    bad = [
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"guidance_scale": float("inf")}, "finite"),
        ({"guidance_interval": (0.9, 0.1)}, "interval"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_samples": 2, "slat_latents": torch.zeros(3, 8)}, "num_samples=1"),
        ({"latents": torch.zeros(2, 3)}, "latents"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            pipe(clip, progress=False, **kwargs)
    with pytest.raises(ValueError, match="`slat_latents` must be"):
        pipe(clip, slat_latents=torch.zeros(3, 8), progress=False)
    with pytest.raises(TypeError, match="FlowMatchScheduler"):
        type(pipe)(**{**pipe.components, "slat_scheduler": object()})
