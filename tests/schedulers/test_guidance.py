import pytest
import torch

from ss4d.pipelines.denoise import denoise
from ss4d.schedulers import ClassifierFreeGuidance, FlowMatchEulerScheduler


def test_guidance_runs_the_unconditional_model_only_inside_the_interval():
    seen = []

    def model(x, t, cond):
        seen.append((round(t, 3), cond))
        return torch.full_like(x, 1.0 if cond == "c" else 0.5)

    g = ClassifierFreeGuidance(3.0, (0.5, 1.0))
    assert g(model, torch.zeros(1), 0.75, "c", "u").item() == 4 * 1.0 - 3 * 0.5
    assert g(model, torch.zeros(1), 0.25, "c", "u").item() == 1.0
    seen.clear()
    denoise(model, torch.zeros(1), "c", neg_cond="u", scheduler=FlowMatchEulerScheduler(), num_inference_steps=4,
            guidance=g)  # fmt: skip
    assert seen == [(1.0, "c"), (1.0, "u"), (0.75, "c"), (0.75, "u"), (0.5, "c"), (0.5, "u"), (0.25, "c")]
    assert not ClassifierFreeGuidance(0.0).active(0.7)


def test_bad_guidance():
    with pytest.raises(ValueError, match="interval"):
        ClassifierFreeGuidance(1.0, (0.8, 0.2))
    with pytest.raises(ValueError, match="finite"):
        ClassifierFreeGuidance(float("nan"))
    with pytest.raises(ValueError, match="neg_cond"):
        denoise(lambda x, t, c: x, torch.zeros(1), "c", scheduler=FlowMatchEulerScheduler(), num_inference_steps=2,
                guidance=ClassifierFreeGuidance(1.0))  # fmt: skip


def test_callback_may_replace_the_latents():
    steps = []

    def callback(i, t, kwargs):
        steps.append((i, t))
        return {"latents": torch.zeros_like(kwargs["latents"])}

    out = denoise(lambda x, t, c: torch.ones_like(x), torch.full((2,), 5.0), None,
                  scheduler=FlowMatchEulerScheduler(), num_inference_steps=2, callback=callback)  # fmt: skip
    assert torch.equal(out, torch.zeros(2)) and steps == [(0, 1.0), (1, 0.5)]
