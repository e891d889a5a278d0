"""Regressions of issue 15 at the pipeline level: provenance in summary.json, whole-or-nothing saves with
normal permissions, NaN guards naming the stage, the long-clip notice."""

import json
import os
import stat

import pytest
import torch

from ss4d import __version__
from ss4d.errors import NonFiniteError, OutputExistsError
from ss4d.pipelines import SS4DPipeline

from .tiny import moving_disc_clip, tiny_pipeline


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robust") / "model"
    old = os.umask(0o022)
    try:
        tiny_pipeline().save_pretrained(folder)
    finally:
        os.umask(old)
    return folder


def test_saved_files_have_normal_permissions_and_a_second_save_needs_overwrite(saved, tmp_path):
    for p in saved.rglob("*"):
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p  # was 0600
    with pytest.raises(OutputExistsError, match="overwrite"):
        tiny_pipeline(1).save_pretrained(saved)
    SS4DPipeline.from_pretrained(saved)  # untouched
    model = SS4DPipeline.from_pretrained(saved).slat_flow
    with pytest.raises(OutputExistsError):
        model.save_pretrained(saved / "slat_flow")
    model.save_pretrained(saved / "slat_flow", overwrite=True)


def test_summary_records_what_reproduces_the_run(saved, tmp_path):
    pipe = SS4DPipeline.from_pretrained(saved)
    out = pipe(moving_disc_clip(4), seed=7, num_steps=2, cfg_strength=1.5, progress=False)
    out.save(tmp_path / "o", preview=False)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["seed"] == 7 and s["structure_sampler"]["num_steps"] == 2 and s["structure_sampler"]["cfg_strength"] == 1.5
    assert s["slat_sampler"]["num_steps"] == 2 and s["mask_source"] == "alpha"
    assert s["model"] == str(saved) and len(s["config_hash"]) == 16
    assert s["versions"] == {"ss4d": __version__, "torch": torch.__version__}
    with pytest.raises(OutputExistsError):
        out.save(tmp_path / "o")
    out.save(tmp_path / "o", preview=False, overwrite=True)


def test_the_config_hash_changes_with_the_config(saved, tmp_path):
    import shutil

    other = shutil.copytree(saved, tmp_path / "m")
    cfg = json.loads((other / "model_index.json").read_text())
    cfg["slat_sampler"]["num_steps"] = 3
    (other / "model_index.json").write_text(json.dumps(cfg))
    assert SS4DPipeline.from_pretrained(other).source["config_hash"] != SS4DPipeline.from_pretrained(
        saved).source["config_hash"]  # fmt: skip


def test_nan_stage_output_names_the_stage_and_writes_nothing(tmp_path):
    pipe = tiny_pipeline()
    with torch.no_grad():
        next(pipe.slat_decoder.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="decode stage"):
        pipe(moving_disc_clip(2), num_inference_steps=1, progress=False).save(tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_nan_normalisation_stats_are_refused():
    p = tiny_pipeline()
    with pytest.raises(NonFiniteError, match="slat_normalization"):
        SS4DPipeline(condition_encoder=p.condition_encoder, structure_decoder=p.structure_decoder,
                     structure_flow=p.structure_flow, slat_flow=p.slat_flow, slat_decoder=p.slat_decoder,
                     slat_std=[float("inf")] + [1.0] * (len(p.slat_std) - 1))  # fmt: skip


def test_a_clip_longer_than_the_trained_frames_gets_a_notice():
    pipe = tiny_pipeline()
    pipe.trained_frames = 2
    with pytest.warns(UserWarning, match="trained on up to 2"):
        pipe(moving_disc_clip(3), num_inference_steps=1, progress=False)
