"""Build an official-format SS4D release folder (and a fake hub cache) from the public official fixtures."""

import json
import shutil
from pathlib import Path

from ..layers.official import ROOT

STEMS = {
    "sparse_structure_decoder": ("ssvae_dec", "ckpts/ss_dec_conv3d_16l8_fp16"),
    "sparse_structure_flow_model": ("ssflow4d_win", "ckpts/ss_flow_video_4d"),
    "slat_flow_model": ("slatflow4d_3d1d", "ckpts/slat_flow_video_4d"),
    "slat_decoder_gs": ("slatvae_dec_gs", "ckpts/slat_dec_gs_4d"),
}
SAMPLER = {
    "name": "FlowEulerGuidanceIntervalSampler",
    "args": {"sigma_min": 1e-5},
    "params": {"steps": 25, "cfg_strength": 7.5, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0},
}


def pipeline_json(**overrides) -> dict:
    args = {
        "models": {role: stem for role, (_, stem) in STEMS.items()} | {"slat_decoder_mesh": "ckpts/slat_dec_mesh"},
        "sparse_structure_sampler": SAMPLER,
        "slat_sampler": {**SAMPLER, "params": {**SAMPLER["params"], "cfg_strength": 3.0}},
        "slat_normalization": {"mean": [0.1 * i for i in range(8)], "std": [1.0 + 0.1 * i for i in range(8)]},
        "image_cond_model": "dinov2_vitl14_reg",
    }
    return {"name": "TrellisVideoTo4DPipeline", "args": {**args, **overrides}}


def build_release(folder: Path, **overrides) -> Path:
    """``pipeline.json`` + ``ckpts/<stem>.json|.safetensors`` from tests/fixtures/official (a mesh decoder is
    listed but not shipped, like a release whose mesh decoder ss4d skips)."""
    (folder / "ckpts").mkdir(parents=True, exist_ok=True)
    for fixture, stem in STEMS.values():
        ckpt = json.loads((ROOT / fixture / "config.json").read_text())["checkpoint_json"]
        (folder / f"{stem}.json").write_text(json.dumps(ckpt))
        shutil.copy(ROOT / fixture / "model.safetensors", folder / f"{stem}.safetensors")
    (folder / "pipeline.json").write_text(json.dumps(pipeline_json(**overrides)))
    return folder


def fake_hub_cache(cache: Path, repo_id: str, files_from: Path, revision: str = "0" * 40) -> Path:
    """The huggingface_hub cache layout: ``models--owner--name/{refs/main, snapshots/<rev>/...}``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(files_from, repo / "snapshots" / revision)
    return repo / "snapshots" / revision
