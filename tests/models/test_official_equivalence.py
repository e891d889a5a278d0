"""Every official fixture model, converted by ss4d.convert, reproduces the official outputs (<= 1e-5)."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from ss4d.convert import convert_official
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

from ..layers.official import ROOT

ATOL = 1e-5


def _case(name: str):
    folder = ROOT / name
    ckpt = json.loads((folder / "config.json").read_text())["checkpoint_json"]
    result = convert_official(ckpt, folder / "model.safetensors")
    assert not result.report, result.report.describe()  # 0 missing / 0 unexpected / 0 mismatched
    return result.model, load_file(str(folder / "T4.safetensors")), ckpt["args"]


def _sparse(t: dict, prefix: str, res: int, T: int = 4) -> SparseTensor:
    return SparseTensor(t[f"{prefix}.feats"], t[f"{prefix}.coords"], SpacetimeLayout(1, T), spatial_shape=(res,) * 3)


def _close(got, want):
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def test_structure_flow():
    model, t, a = _case("ssflow4d_win")
    R = a["resolution"]
    with torch.no_grad():
        out = model(t["in.x"].view(1, 4, -1, R, R, R), t["in.t"][:1] / 1000, t["in.cond"].unsqueeze(0))
    _close(out[0], t["out.x"])


def test_structure_flow_insert_temporal_ablation():
    """The official insert_temporal ablation (per-frame self-attention, inserted full temporal attention with
    its own modulation, the cross-attention's affine norm reused before it) converts to the named parity
    variant and reproduces the official output."""
    from ss4d.models import StructureFlow4DInsertTemporal

    model, t, a = _case("ssflow4d_insert")
    assert type(model) is StructureFlow4DInsertTemporal and model.config.temporal == "none"
    R = a["resolution"]
    with torch.no_grad():
        out = model(t["in.x"].view(1, 4, -1, R, R, R), t["in.t"][:1] / 1000, t["in.cond"].unsqueeze(0))
    _close(out[0], t["out.x"])


def test_structure_flow_insert_temporal_has_the_official_initialisation():
    """Fresh weights: the same parameters are zero as in a fresh official model (the temporal layers and
    their modulation are Xavier, not zero: unlike ss4d's own zero-initialised insert mode)."""
    from ss4d.convert import config_from_official

    official = json.loads((ROOT / "ssflow4d_insert" / "config.json").read_text())
    cls, cfg = config_from_official(official["checkpoint_json"])
    torch.manual_seed(0)
    zero = sorted(k for k, v in cls(cfg).state_dict().items() if not v.any())
    assert zero == official["official_init_zero_keys"]
    assert "blocks.0.adaLN_modulation_temporal.1.weight" not in zero and "blocks.0.temp_attn.to_out.weight" not in zero


def test_slat_flow():
    model, t, a = _case("slatflow4d_3d1d")
    assert model.config.pooling == "official"
    x = _sparse(t, "in", a["resolution"])
    with torch.no_grad():
        out = model(x, t["in.t"][:1] / 1000, t["in.cond"].unsqueeze(0))
    assert torch.equal(out.coords, t["out.coords"])
    _close(out.feats, t["out.feats"])


def test_slat_encoder():
    model, t, a = _case("slatvae_enc")
    with torch.no_grad():
        z, mean, logvar = model(_sparse(t, "in", a["resolution"]))
    _close(mean.feats, t["out.mean"])
    _close(logvar.feats, t["out.logvar"])
    _close(z.feats, t["out.z"])


def test_gaussian_decoder():
    model, t, a = _case("slatvae_dec_gs")
    with torch.no_grad():
        frames = model(_sparse(t, "in", a["resolution"]))
    assert [len(g) for g in frames] == t["out.points_per_entry"].tolist()
    for raw in ("_xyz", "_features_dc", "_scaling", "_rotation", "_opacity"):
        _close(torch.cat([getattr(g, raw) for g in frames]), t[f"out.{raw}"])
    for official, ours in [("get_xyz", "xyz"), ("get_scaling", "scaling"), ("get_opacity", "opacity"),
                           ("get_rotation", "rotation"), ("get_features", "features")]:  # fmt: skip
        _close(torch.cat([getattr(g, ours) for g in frames]), t[f"out.{official}"])


def test_structure_decoder():
    model, t, _ = _case("ssvae_dec")
    with torch.no_grad():
        logits = model(t["in.z"].unsqueeze(0))
    _close(logits[0], t["out.logits"])
    from ss4d.models import occupancy_to_coords

    assert torch.equal(occupancy_to_coords(logits), t["out.coords"])


@pytest.mark.parametrize(
    "name,args,match",
    [
        ("SLatFlow4DModel", {"conv_type": "3D"}, "broken"),
        ("SparseStructureFlow4DModel", {"pe_mode": "rope"}, "rope"),
        ("SparseStructureFlow4DModel", {"insert_temporal": True, "share_mod": True}, "share_mod"),
        ("SparseStructureFlow4DModel", {"insert_temporal": True, "expand_self_attn": False}, "NotImplementedError"),
        ("SparseStructureFlow4DModel", {"mystery": 1}, "unsupported"),
        ("NoSuchModel", {}, "unknown"),
    ],
)
def test_unsupported_official_configs_raise(name, args, match):
    from ss4d.convert import config_from_official

    base = json.loads((ROOT / ("slatflow4d_3d1d" if "SLat" in name else "ssflow4d_win") / "config.json").read_text())
    with pytest.raises(ValueError, match=match):
        config_from_official({"name": name, "args": {**base["checkpoint_json"]["args"], **args}})


def test_gaussian_decoder_with_the_exp_scaling_activation():
    """``representation_config.scaling_activation='exp'`` (the official alternative to softplus) converts: the
    network is the same, the activated scales follow ``exp(_scaling + log(scaling_bias))`` with the 3D filter."""
    folder = ROOT / "slatvae_dec_gs"
    ckpt = json.loads((folder / "config.json").read_text())["checkpoint_json"]
    rep = {**ckpt["args"]["representation_config"], "scaling_activation": "exp"}
    ckpt = {**ckpt, "args": {**ckpt["args"], "representation_config": rep}}
    result = convert_official(ckpt, folder / "model.safetensors")
    assert not result.report, result.report.describe()
    assert result.model.config.scaling_activation == "exp"
    t = load_file(str(folder / "T4.safetensors"))
    with torch.no_grad():
        frames = result.model(_sparse(t, "in", ckpt["args"]["resolution"]))
    raw = torch.cat([g._scaling for g in frames])
    _close(raw, t["out._scaling"])
    bias, filt = rep.get("scaling_bias", 4e-3), rep.get("3d_filter_kernel_size", 9e-4)
    want = ((t["out._scaling"].double() + math.log(bias)).exp().square() + filt**2).sqrt()
    torch.testing.assert_close(torch.cat([g.scaling for g in frames]).double(), want, rtol=1e-5, atol=1e-7)
    rep_bad = {**rep, "scaling_activation": "relu"}
    from ss4d.convert import config_from_official
    from ss4d.errors import CheckpointError

    with pytest.raises(CheckpointError, match="scaling_activation 'relu'"):
        config_from_official({**ckpt, "args": {**ckpt["args"], "representation_config": rep_bad}})
