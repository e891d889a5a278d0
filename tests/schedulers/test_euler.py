import json

import pytest
import torch
from safetensors.torch import load_file

from ss4d.pipelines.denoise import denoise
from ss4d.schedulers import ClassifierFreeGuidance, FlowMatchEulerScheduler

from ..layers.official import ROOT
from .gaussian_flow import observed_order

SAMPLER = ROOT / "sampler"


def _dummy_model(num_frames: int, calls: list):
    """The fixture's velocity: v = 0.5 x - 0.3 (1000 t / 1000) + 0.7 mean(cond per entry) + 0.01 T."""

    def model(x, t, cond):
        calls.append((t, float(cond.abs().sum())))
        c = cond.flatten(1).mean(1).view(-1, *[1] * (x.ndim - 1))
        return 0.5 * x - 0.3 * torch.tensor(t * 1000, dtype=torch.float32) / 1000 + 0.7 * c + 0.01 * num_frames

    return model


@pytest.mark.parametrize("case", ["dummy_dense_plain", "dummy_dense_cfg"])
def test_reproduces_the_official_sampler(case):
    meta = json.loads((SAMPLER / f"{case}.json").read_text())
    t = load_file(str(SAMPLER / f"{case}.safetensors"))
    kw = meta["sample_kwargs"]
    calls: list = []
    trajectory: list = []
    sched = FlowMatchEulerScheduler(sigma_min=meta["sampler_init"]["sigma_min"], shift=kw["rescale_t"])
    out = denoise(
        _dummy_model(meta["num_frames"], calls), t["in.noise"], t["in.cond"], neg_cond=t.get("in.neg_cond"),
        scheduler=sched, num_inference_steps=kw["steps"], guidance=ClassifierFreeGuidance(kw.get("cfg_strength", 0.0)),
        callback=lambda i, ts, kwargs: trajectory.append(kwargs),
    )  # fmt: skip
    grid = sched.sigmas.tolist()
    pairs = [list(p) for p in zip(grid[:-1], grid[1:], strict=True)]
    assert [pytest.approx(p, abs=1e-12) for p in meta["t_pairs"]] == pairs
    assert sched.timesteps.tolist() == grid[:-1] and len(trajectory) == kw["steps"]
    assert [round(c[0] * 1000, 2) for c in calls] == [round(c["t"][0], 2) for c in meta["model_calls"]]
    xt = torch.stack([s["latents"] for s in trajectory])
    x0 = torch.stack([s["pred_original_sample"] for s in trajectory])
    torch.testing.assert_close(xt, t["out.pred_x_t"], rtol=0, atol=1e-5)
    torch.testing.assert_close(x0, t["out.pred_x_0"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out, t["out.samples"], rtol=0, atol=1e-5)


def test_step_is_the_euler_formula():
    s = FlowMatchEulerScheduler(shift=3.0)
    s.set_timesteps(4)
    assert s.sigmas.dtype == torch.float64 and len(s.sigmas) == 5 and len(s.timesteps) == 4
    x, v = torch.randn(5), torch.randn(5)
    t0, t1 = s.sigmas[:2].tolist()
    out = s.step(v, s.timesteps[0], x)
    assert torch.equal(out.prev_sample, x - (t0 - t1) * v)
    torch.testing.assert_close(out.pred_original_sample, (1 - 1e-5) * x - (1e-5 + (1 - 1e-5) * t0) * v)
    prev, x0 = s.step(v, s.timesteps[1], x, return_dict=False)
    assert prev.shape == x0.shape == x.shape and s.step_index == 2


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_first_order_on_a_closed_form_flow(shift):
    orders = observed_order(FlowMatchEulerScheduler(shift=shift))
    assert all(0.8 < p < 1.3 for p in orders), orders
