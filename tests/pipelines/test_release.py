"""Official SS4D release folders and hub ids load in one step, safely, and match the hand-converted models."""

import json
import logging

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from ss4d.cli import main
from ss4d.convert import convert_official
from ss4d.errors import ModelNotCachedError, ReleaseFormatError, UnsafeModelError
from ss4d.models import DinoV2Encoder
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor
from ss4d.pipelines import SS4DPipeline

from ..layers.official import ROOT
from .release import STEMS, build_release, fake_hub_cache
from .tiny import moving_disc_clip

pytest.importorskip("huggingface_hub")
REPO = "lizb6626/SS4D"
DINO_REPO = "facebook/dinov2-with-registers-large"


@pytest.fixture
def release(tmp_path):
    return build_release(tmp_path / "release")


def _hand_converted(fixture: str):
    ckpt = json.loads((ROOT / fixture / "config.json").read_text())["checkpoint_json"]
    return convert_official(ckpt, ROOT / fixture / "model.safetensors").model


def _assert_stages_match_hand_conversion(pipe: SS4DPipeline, dino) -> None:
    """Each network equals the hand-converted official fixture on the official T4 inputs (1e-6)."""
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # noqa: E731
    t = load_file(str(ROOT / "ssflow4d_win" / "T4.safetensors"))
    x, tt, cond = t["in.x"].view(1, 4, 8, 8, 8, 8), t["in.t"][:1] / 1000, t["in.cond"].unsqueeze(0)
    with torch.no_grad():
        close(pipe.structure_flow(x, tt, cond), _hand_converted("ssflow4d_win")(x, tt, cond))
        official = t["out.x"].view(4, 8, 8, 8, 8)  # and the official output, to the fixtures' 1e-5 bar
        torch.testing.assert_close(pipe.structure_flow(x, tt, cond)[0], official, rtol=0, atol=1e-5)
        z = load_file(str(ROOT / "ssvae_dec" / "T4.safetensors"))["in.z"].unsqueeze(0)
        close(pipe.structure_decoder(z), _hand_converted("ssvae_dec")(z))
        s = load_file(str(ROOT / "slatflow4d_3d1d" / "T4.safetensors"))
        sparse = SparseTensor(s["in.feats"], s["in.coords"], SpacetimeLayout(1, 4), spatial_shape=(16,) * 3)
        args = (sparse, s["in.t"][:1] / 1000, s["in.cond"].unsqueeze(0))
        close(pipe.slat_flow(*args).feats, _hand_converted("slatflow4d_3d1d")(*args).feats)
        d = load_file(str(ROOT / "slatvae_dec_gs" / "T4.safetensors"))
        sparse = SparseTensor(d["in.feats"], d["in.coords"], SpacetimeLayout(1, 4), spatial_shape=(16,) * 3)
        for ours, theirs in zip(pipe.slat_decoder(sparse), _hand_converted("slatvae_dec_gs")(sparse), strict=True):
            close(ours.xyz, theirs.xyz)
            close(ours.features, theirs.features)
        images = torch.rand(2, 3, 518, 518)
        close(pipe.condition_encoder(images), DinoV2Encoder(dino, image_size=518)(images))


def test_release_folder_loads_converted_in_memory(release, tiny_dino, caplog):
    with caplog.at_level(logging.WARNING, logger="ss4d"):
        pipe = SS4DPipeline.from_pretrained(release, condition_encoder=tiny_dino)
    assert [r.getMessage() for r in caplog.records] == [
        "release: skipping slat_decoder_mesh (mesh decoder): ss4d decodes Gaussians only"
    ]
    assert pipe.slat_flow.config.pooling == "official"
    assert (pipe.structure_sampler.num_steps, pipe.structure_sampler.cfg_strength) == (25, 7.5)
    assert pipe.slat_sampler.cfg_strength == 3.0 and pipe.slat_sampler.cfg_interval == (0.5, 1.0)
    assert pipe.slat_mean[1] == pytest.approx(0.1) and pipe.slat_std[2] == pytest.approx(1.2)
    _assert_stages_match_hand_conversion(pipe, tiny_dino)


def test_release_through_a_fake_offline_hub_cache(release, tiny_dino, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fake_hub_cache(cache, REPO, release)
    fake_hub_cache(cache, DINO_REPO, tiny_dino)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub

    calls = []
    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    pipe = SS4DPipeline.from_pretrained(REPO, cache_dir=cache)  # the encoder comes from image_cond_model
    _assert_stages_match_hand_conversion(pipe, tiny_dino)
    patterns = {a[0]: k["allow_patterns"] for a, k in calls}
    needed = {f"{stem}{ext}" for _, stem in STEMS.values() for ext in (".json", ".safetensors")}
    assert set(patterns[REPO]) == {"pipeline.json"} | needed  # not the mesh decoder, not anything else
    assert patterns[DINO_REPO] == ["config.json", "model.safetensors"]
    assert all(k["local_files_only"] and k["cache_dir"] == cache for _, k in calls)


def test_offline_hub_id_with_nothing_cached_names_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotCachedError, match=f"hf download {REPO} --revision v1 --cache-dir {tmp_path}"):
        SS4DPipeline.from_pretrained(REPO, cache_dir=tmp_path, revision="v1")


def test_offline_release_without_cached_dinov2_names_the_download_command(release, tmp_path):
    fake_hub_cache(tmp_path / "cache", REPO, release)
    with pytest.raises(ModelNotCachedError, match=f"hf download {DINO_REPO} config.json model.safetensors"):
        SS4DPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache", local_files_only=True)


def _drop(release, stem_suffix):
    (release / f"{STEMS['slat_flow_model'][1]}{stem_suffix}").unlink()


def _rename_model(release):
    path = release / f"{STEMS['slat_decoder_gs'][1]}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "name": "SLatMysteryDecoder"}))


def _reshape(release):
    path = release / f"{STEMS['sparse_structure_flow_model'][1]}.safetensors"
    state = load_file(str(path))
    state["input_layer.weight"] = torch.zeros(64, 32)
    save_file(state, str(path))


def _foreign_role(release):
    data = json.loads((release / "pipeline.json").read_text())
    data["args"]["models"]["mystery_model"] = "ckpts/x"
    (release / "pipeline.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    "spoil,match",
    [
        (lambda r: _drop(r, ".safetensors"), r"slat_flow_video_4d.safetensors not found .*hf download"),
        (lambda r: _drop(r, ".json"), r"slat_flow_video_4d.json not found"),
        (_rename_model, r"slat_dec_gs_4d.json: model name 'SLatMysteryDecoder' cannot be the slat_decoder"),
        (_reshape, r"ss_flow_video_4d.safetensors does not fit .*input_layer.weight \(checkpoint \(64, 32\)"),
        (_foreign_role, r"pipeline.json: unknown model role 'mystery_model'"),
    ],
    ids=["missing-weights", "missing-json", "unknown-model", "wrong-shape", "unknown-role"],
)
def test_bad_release_fails_before_loading_weights(release, tiny_dino, monkeypatch, spoil, match):
    spoil(release)
    import ss4d.convert.release as rel

    monkeypatch.setattr(rel, "convert_official", lambda *a, **k: pytest.fail("weights were read"))
    with pytest.raises(ReleaseFormatError, match=match):
        SS4DPipeline.from_pretrained(release, condition_encoder=tiny_dino)


def test_remote_code_encoder_is_refused_before_transformers_reads_it(release, tiny_dino, monkeypatch, capsys,
                                                                      tmp_path):
    config = json.loads((tiny_dino / "config.json").read_text())
    (tiny_dino / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    import transformers

    monkeypatch.setattr(transformers.Dinov2WithRegistersModel, "from_pretrained", lambda *a, **k: pytest.fail())
    with pytest.raises(UnsafeModelError, match="auto_map"):
        SS4DPipeline.from_pretrained(release, condition_encoder=tiny_dino)
    clip = tmp_path / "x.gif"
    Image.new("RGB", (16, 16), "white").save(clip)
    out = tmp_path / "out"
    code = main(["generate", str(clip), "-o", str(out), "--model", str(release), "--condition-encoder", str(tiny_dino)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and err[0].startswith("error: ") and "auto_map" in err[0] and not out.exists()


def test_generate_and_convert_a_release_from_the_command_line(release, tiny_dino, tmp_path):
    from ss4d.data import write_video

    clip = write_video(moving_disc_clip(4, alpha=False), tmp_path / "clip.gif")
    out = tmp_path / "out"
    code = main(["generate", str(clip), "--model", str(release), "--condition-encoder", str(tiny_dino),
                 "--steps", "2", "--max-frames", "4", "-o", str(out), "--no-preview", "-q"])  # fmt: skip
    assert code == 0 and len(sorted(out.glob("*.ply"))) == 4
    assert main(["convert", str(release), "-o", str(tmp_path / "ss4d"), "--condition-encoder", str(tiny_dino)]) == 0
    converted = SS4DPipeline.from_pretrained(tmp_path / "ss4d")
    assert (tmp_path / "ss4d" / "model_index.json").is_file()
    _assert_stages_match_hand_conversion(converted, tiny_dino)
    # a DINOv2 component inside an ss4d pipeline folder is vetted the same way
    config = tmp_path / "ss4d" / "condition_encoder" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(UnsafeModelError, match="auto_map"):
        SS4DPipeline.from_pretrained(tmp_path / "ss4d")


def test_ss4d_pipeline_through_a_fake_offline_hub_cache(tmp_path, monkeypatch):
    from .tiny import tiny_pipeline

    pipe = tiny_pipeline()
    fake_hub_cache(tmp_path / "cache", "someone/ss4d-tiny", pipe.save_pretrained(tmp_path / "p"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = SS4DPipeline.from_pretrained("someone/ss4d-tiny", cache_dir=tmp_path / "cache")
    for name, tensor in pipe.slat_flow.state_dict().items():
        assert torch.equal(tensor, loaded.slat_flow.state_dict()[name])
    with pytest.raises(FileNotFoundError, match="no such pipeline folder"):
        SS4DPipeline.from_pretrained(tmp_path / "someone" / "nothing")  # absolute paths are never hub ids
