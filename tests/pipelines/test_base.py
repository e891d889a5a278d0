"""The pipeline persistence base: registry (allowlist), model_index.json, defaults for older folders."""

import json
import shutil

import pytest
import torch

from ss4d.models import DinoV2Encoder, TinyImageEncoder
from ss4d.pipelines import COMPONENT_CLASSES, SS4DPipeline, component_io, register_component, shipped_tiny_path
from ss4d.schedulers import FlowMatchAB2Scheduler, FlowMatchEulerScheduler, FlowMatchHeunScheduler

from .tiny import tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def test_schedulers_are_components_that_round_trip(pipe, tmp_path):
    pipe.structure_scheduler = FlowMatchHeunScheduler(shift=2.0)
    pipe.slat_scheduler = FlowMatchAB2Scheduler(sigma_min=1e-4)
    try:
        pipe.save_pretrained(tmp_path / "p")
    finally:
        pipe.structure_scheduler = pipe.slat_scheduler = FlowMatchEulerScheduler(shift=3.0)
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["components"]["structure_scheduler"] == "FlowMatchHeunScheduler"
    assert "rescale_t" not in index["structure_sampler"] and "sigma_min" not in index
    assert json.loads((tmp_path / "p" / "slat_scheduler" / "scheduler_config.json").read_text())["sigma_min"] == 1e-4
    loaded = SS4DPipeline.from_pretrained(tmp_path / "p")
    assert type(loaded.structure_scheduler) is FlowMatchHeunScheduler and loaded.structure_scheduler.config.shift == 2
    assert type(loaded.slat_scheduler) is FlowMatchAB2Scheduler and loaded.slat_sampler == pipe.slat_sampler
    index["slat_sampler"]["rescale_t"] = 3.0  # the older place of the time grid: ambiguous next to a scheduler
    (tmp_path / "p" / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="conflicts with the slat_scheduler"):
        SS4DPipeline.from_pretrained(tmp_path / "p")


def test_a_folder_without_schedulers_gets_the_euler_its_sampler_settings_describe(tmp_path):
    shipped = shipped_tiny_path()
    index = json.loads((shipped / "model_index.json").read_text())
    assert "structure_scheduler" not in index["components"]  # written before schedulers were components
    pipe = SS4DPipeline.from_pretrained(shipped)
    for stage in ("structure", "slat"):
        s = getattr(pipe, f"{stage}_scheduler")
        assert type(s) is FlowMatchEulerScheduler
        assert s.config.shift == index[f"{stage}_sampler"]["rescale_t"] and s.config.sigma_min == index["sigma_min"]
        assert getattr(pipe, f"{stage}_sampler").cfg_strength == index[f"{stage}_sampler"]["cfg_strength"]
    index["structure_sampler"]["rescale_t"] = 1.5
    index["sigma_min"] = 1e-3
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("condition_encoder", "structure_decoder", "structure_flow", "slat_flow", "slat_decoder"):
        shutil.copytree(shipped / name, legacy / name)  # copies: component folders must lie inside the folder
    (legacy / "model_index.json").write_text(json.dumps(index))
    s = SS4DPipeline.from_pretrained(legacy).structure_scheduler
    assert (s.config.shift, s.config.sigma_min) == (1.5, 1e-3)
    index["slat_sampler"]["steps"] = 3
    (legacy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="unknown sampler keys"):
        SS4DPipeline.from_pretrained(legacy)


def test_unregistered_components_neither_save_nor_load(pipe, tmp_path):
    class MyEncoder(TinyImageEncoder):
        pass

    custom = SS4DPipeline(**{**pipe.components, "condition_encoder": MyEncoder(pipe.condition_encoder.config)})
    with pytest.raises(ValueError, match="not a registered class"):
        custom.save_pretrained(tmp_path / "c")
    assert not (tmp_path / "c").exists()  # checked before anything is written
    with pytest.raises(ValueError, match="already registered"):
        register_component(type("TinyImageEncoder", (TinyImageEncoder,), {}))
    assert register_component(MyEncoder) is MyEncoder
    try:
        custom.save_pretrained(tmp_path / "c")
        loaded = SS4DPipeline.from_pretrained(tmp_path / "c")
        assert type(loaded.condition_encoder) is MyEncoder
    finally:
        del COMPONENT_CLASSES["MyEncoder"]
    with pytest.raises(ValueError, match="allowlist"):
        SS4DPipeline.from_pretrained(tmp_path / "c")


def test_dinov2_saves_and_loads_through_its_registration(tiny_dino, tmp_path):
    io = component_io("DinoV2Encoder")
    enc = DinoV2Encoder(tiny_dino, image_size=56)
    io.save(enc, tmp_path / "enc", None)
    again = io.load(tmp_path / "enc")
    assert type(again) is DinoV2Encoder
    for a, b in zip(enc.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
