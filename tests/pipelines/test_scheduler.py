import json

import pytest
import torch
from safetensors.torch import load_file

from ss4d.pipelines.scheduler import FlowMatchingScheduler

from ..layers.official import ROOT

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
    sched = FlowMatchingScheduler(sigma_min=meta["sampler_init"]["sigma_min"])
    out = sched.sample(
        _dummy_model(meta["num_frames"], calls),
        t["in.noise"],
        t["in.cond"],
        neg_cond=t.get("in.neg_cond"),
        num_steps=kw["steps"],
        rescale_t=kw["rescale_t"],
        cfg_strength=kw.get("cfg_strength", 0.0),
        keep_trajectory=True,
    )
    assert [pytest.approx(p, abs=1e-12) for p in meta["t_pairs"]] == [
        list(p)
        for p in zip(
            sched.schedule(kw["steps"], kw["rescale_t"])[:-1],
            sched.schedule(kw["steps"], kw["rescale_t"])[1:],
            strict=True,
        )
    ]
    assert [round(c[0] * 1000, 2) for c in calls] == [round(c["t"][0], 2) for c in meta["model_calls"]]
    torch.testing.assert_close(torch.stack(out.trajectory), t["out.pred_x_t"], rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.stack(out.pred_x0), t["out.pred_x_0"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.samples, t["out.samples"], rtol=0, atol=1e-5)


def test_training_helpers():
    s = FlowMatchingScheduler()
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    xt = s.add_noise(x0, eps, t)
    torch.testing.assert_close(xt[0], x0[0] + 1e-5 * eps[0])
    torch.testing.assert_close(xt[3], eps[3])
    # the velocity target is d x_t / d t
    dt = 1e-3
    torch.testing.assert_close((s.add_noise(x0, eps, t + dt) - xt) / dt, s.velocity_target(x0, eps).expand_as(xt),
                               rtol=1e-3, atol=1e-3)  # fmt: skip
    ts = s.sample_timesteps(20000, generator=torch.Generator().manual_seed(0))
    assert float(ts.min()) > 0 and float(ts.max()) < 1
    assert abs(float(torch.logit(ts).mean()) - 1.0) < 0.05 and abs(float(torch.logit(ts).std()) - 1.0) < 0.05


def test_exact_velocity_field_recovers_a_gaussian():
    """Data ~ N(mu, s^2) (per dim); the exact CFM velocity is known in closed form, so sampling must
    recover the data moments."""
    mu, sd, sm = 2.0, 0.5, 1e-5
    s = FlowMatchingScheduler(sigma_min=sm)

    def exact_v(x, t, cond):
        # x_t = (1 - t) x0 + sig(t) eps; E[v | x_t] for Gaussian x0, eps
        a, b = 1 - t, sm + (1 - sm) * t
        var = a * a * sd * sd + b * b
        e_x0 = mu + a * sd * sd * (x - a * mu) / var
        e_eps = b * (x - a * mu) / var
        return (1 - sm) * e_eps - e_x0

    noise = torch.randn(200000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = s.sample(exact_v, noise, None, num_steps=200, rescale_t=1.0).samples
    assert abs(float(out.mean()) - mu) < 0.01 and abs(float(out.std()) - sd) < 0.01


def test_guidance_interval_and_errors():
    s = FlowMatchingScheduler()
    seen = []

    def model(x, t, cond):
        seen.append((round(t, 3), cond))
        return torch.zeros_like(x)

    s.sample(model, torch.zeros(1), "c", neg_cond="u", num_steps=4, cfg_strength=3.0, cfg_interval=(0.5, 1.0))
    assert seen == [(1.0, "c"), (1.0, "u"), (0.75, "c"), (0.75, "u"), (0.5, "c"), (0.5, "u"), (0.25, "c")]
    with pytest.raises(ValueError, match="neg_cond"):
        s.sample(model, torch.zeros(1), "c", cfg_strength=1.0)
    with pytest.raises(ValueError, match="cfg_interval"):
        s.sample(model, torch.zeros(1), "c", neg_cond="u", cfg_strength=1.0, cfg_interval=(0.8, 0.2))
    with pytest.raises(ValueError, match="num_steps"):
        s.sample(model, torch.zeros(1), "c", num_steps=0)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        list(FlowMatchingScheduler().pairs())
    s.set_timesteps(3, rescale_t=3.0)
    assert len(list(s.pairs())) == 3 and s.timesteps[0] == 1.0 and s.timesteps[-1] == 0.0
