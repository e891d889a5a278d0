"""Run-time controls: torch_dtype at load, .to(), model CPU offload, backends at load, peak memory per stage."""

import pytest
import torch

from ss4d.errors import UnknownBackendError
from ss4d.ops.attention import attention_backends
from ss4d.ops.sparse import sparse_conv_backends
from ss4d.pipelines import SamplerParams, SS4DPipeline
from ss4d.pipelines.runtime import STAGE_COMPONENTS

from .tiny import moving_disc_clip, tiny_pipeline

NETWORKS = [c for names in STAGE_COMPONENTS.values() for c in names]


@pytest.fixture
def saved(tmp_path):
    return tiny_pipeline().save_pretrained(tmp_path / "p")


def test_torch_dtype_at_load_and_to(saved):
    pipe = SS4DPipeline.from_pretrained(saved, torch_dtype=torch.bfloat16)
    assert {p.dtype for c in NETWORKS for p in getattr(pipe, c).parameters()} == {torch.bfloat16}
    cond = pipe.encode_condition(torch.rand(2, 3, pipe.image_size, pipe.image_size))
    assert torch.isfinite(cond).all()  # networks compute in bf16 and answer in the input's dtype
    coords = pipe.sample_structure(cond, params=SamplerParams(num_steps=1, cfg_strength=0.0), progress=False)
    assert coords.shape[0] > 0
    pipe.to(dtype=torch.float32)
    assert {p.dtype for c in NETWORKS for p in getattr(pipe, c).parameters()} == {torch.float32}


def test_cpu_offload_keeps_only_the_active_stage_on_the_accelerator(saved):
    """Bookkeeping on CPU (execution device = CPU): at every network call, that network is the one the
    runtime placed on the accelerator, and every network of another stage is parked."""
    pipe = SS4DPipeline.from_pretrained(saved).enable_model_cpu_offload("cpu")
    calls = []

    def check(component):
        def hook(module, args):
            stage, placed = pipe.runtime.placements[-1][0], {}
            for s, c, where in pipe.runtime.placements:
                if s == stage:
                    placed[c] = where
            calls.append(component)
            assert placed[component] == "accelerator"
            assert {c for c, w in placed.items() if w == "accelerator"} == set(STAGE_COMPONENTS[stage])

        return hook

    for component in NETWORKS:
        getattr(pipe, component).register_forward_pre_hook(check(component))
    pipe(moving_disc_clip(2), num_inference_steps=1, progress=False)
    assert set(calls) == set(NETWORKS)
    stages = [s for s, _, _ in pipe.runtime.placements[:: len(NETWORKS)]]
    assert stages == ["condition", "structure", "slat", "decode"]
    pipe.to("cpu")
    assert pipe.runtime.offload_device is None


@pytest.mark.cuda
def test_cpu_offload_on_cuda(saved):
    pipe = SS4DPipeline.from_pretrained(saved).enable_model_cpu_offload("cuda")
    seen = {}
    for component in NETWORKS:
        module = getattr(pipe, component)
        def record(m, a, c=component) -> None:  # a pre-hook that returns a value would replace the inputs
            seen.setdefault(c, {n: getattr(pipe, n).device.type for n in NETWORKS})

        module.register_forward_pre_hook(record)
    out = pipe(moving_disc_clip(2), num_inference_steps=1, progress=False)
    for stage, active in STAGE_COMPONENTS.items():
        for component in active:
            assert {n for n, d in seen[component].items() if d == "cuda"} == set(active), stage
    assert all(isinstance(v, int) and v > 0 for v in out.peak_memory.values())


def test_backends_at_load_scope_every_stage(saved):
    pipe = SS4DPipeline.from_pretrained(saved, attn_backend="naive", sparse_conv_backend="torch")
    seen = []
    pipe.slat_flow.register_forward_pre_hook(
        lambda m, a: seen.append(
            (attention_backends.resolve("auto", "cpu").name, sparse_conv_backends.resolve("auto", "cpu").name)
        )  # fmt: skip
    )
    pipe(moving_disc_clip(2), num_inference_steps=1, progress=False)
    assert set(seen) == {("naive", "torch")}
    assert attention_backends.resolve("auto", "cpu").name != "naive"  # only inside the stages
    with pytest.raises(UnknownBackendError, match="nonesuch"):
        SS4DPipeline.from_pretrained(saved, attn_backend="nonesuch")


def test_peak_memory_is_reported_per_stage(saved, tmp_path):
    out = SS4DPipeline.from_pretrained(saved)(moving_disc_clip(2), num_inference_steps=1, progress=False)
    assert set(out.peak_memory) == {"condition", "structure", "slat", "decode"}
    assert all(v is None for v in out.peak_memory.values())  # CPU: no allocator counter to read
    import json

    out.save(tmp_path / "o", preview=False)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["peak_memory_mb"] == {"condition": "n/a", "structure": "n/a", "slat": "n/a", "decode": "n/a"}
