"""Tiny configs of every network: shapes over T, batches, save/load, gradients, configs, official sizes."""

import json

import pytest
import torch
from safetensors.torch import load_file

from ss4d.errors import CheckpointMismatchError, FrameCountError
from ss4d.models import (
    GaussianDecoder4D,
    GaussianDecoder4DConfig,
    SLatEncoder4D,
    SLatEncoder4DConfig,
    SLatFlow4D,
    SLatFlow4DConfig,
    SparseStructureDecoder,
    SparseStructureEncoder,
    SparseStructureVAEConfig,
    StructureFlow4D,
    StructureFlow4DConfig,
)
from ss4d.models.slat_flow import compnet_variants
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

TINY = {
    "structure_flow": (StructureFlow4D, StructureFlow4DConfig(resolution=4, model_channels=32, cond_channels=16,
                                                              num_blocks=2, num_heads=2, patch_size=2, window=2)),
    "slat_flow": (SLatFlow4D, SLatFlow4DConfig(resolution=8, model_channels=32, cond_channels=16, num_blocks=2,
                                               num_heads=2, io_block_channels=16)),
    "slat_encoder": (SLatEncoder4D, SLatEncoder4DConfig(resolution=8, in_channels=12, model_channels=32,
                                                        num_blocks=2, num_heads=2, window=2, window_xyz=4)),
    "gaussian_decoder": (GaussianDecoder4D, GaussianDecoder4DConfig(resolution=8, model_channels=32, num_blocks=2,
                                                                    num_heads=2, window=2, window_xyz=4,
                                                                    num_gaussians=4)),
    "structure_encoder": (SparseStructureEncoder, SparseStructureVAEConfig(channels=(8, 16), num_res_blocks=1,
                                                                           num_res_blocks_middle=1)),
    "structure_decoder": (SparseStructureDecoder, SparseStructureVAEConfig(channels=(8, 16), num_res_blocks=1,
                                                                           num_res_blocks_middle=1)),
}  # fmt: skip


def _voxels(B: int, T: int, res: int, channels: int, seed: int = 0) -> SparseTensor:
    g = torch.Generator().manual_seed(seed)
    occupied = torch.rand(B * T, res, res, res, generator=g) < 0.15
    occupied[:, 0, 0, 0] = True  # no empty frame
    idx = torch.nonzero(occupied).int()
    return SparseTensor(
        torch.randn(len(idx), channels, generator=g), idx, SpacetimeLayout(B, T), spatial_shape=(res,) * 3
    )


def _run(name: str, model, B: int, T: int):
    c = model.config
    if name == "structure_flow":
        R = c.resolution
        return model(torch.randn(B, T, c.in_channels, R, R, R), torch.rand(B), torch.randn(B, T, 3, c.cond_channels))
    if name == "slat_flow":
        return model(
            _voxels(B, T, c.resolution, c.in_channels), torch.rand(B, T), torch.randn(B, T, 3, c.cond_channels)
        )
    if name == "slat_encoder":
        return model(_voxels(B, T, c.resolution, c.in_channels))[1]
    if name == "gaussian_decoder":
        return model(_voxels(B, T, c.resolution, c.latent_channels))
    if name == "structure_encoder":
        return model(torch.randn(B, T, 1, 8, 8, 8))[1]
    return model(torch.randn(B, T, c.latent_channels, 4, 4, 4))


def _tensor(out) -> torch.Tensor:
    if isinstance(out, SparseTensor):
        return out.feats
    if isinstance(out, list):
        return torch.cat([torch.cat([g._xyz, g._scaling, g._opacity], 1) for g in out])
    return out


def _perturb(model) -> None:
    """Break the zero initialisations (adaLN-Zero, output layers, res-block conv2) so gradients reach
    every parameter: the test checks the graph, not the init."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("T", [1, 2, 3, 8])
def test_forward_shapes_over_frame_counts(name, T):
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    if name == "slat_flow" and T % 2:
        with pytest.raises(FrameCountError, match="even frame count"):
            _run(name, model, 2, T)
        return
    with torch.no_grad():
        out = _run(name, model, 2, T)
    if name == "gaussian_decoder":
        assert len(out) == 2 * T and all(g._xyz.shape[1] == 3 for g in out)
    elif name in ("slat_flow", "slat_encoder"):
        assert out.layout == SpacetimeLayout(2, T)
    else:
        assert out.shape[:2] == (2, T)


def test_slat_flow_output_sites_equal_input_sites_for_every_conv_type():
    _, cfg = TINY["slat_flow"]
    x = _voxels(2, 4, cfg.resolution, cfg.in_channels)
    for conv_type in compnet_variants.names():  # every registered CompNet variant
        model = SLatFlow4D(cfg.replace(conv_type=conv_type))
        out = model(x, torch.rand(2), torch.randn(2, 4, 3, cfg.cond_channels))
        assert out.same_sites(x), conv_type


def test_per_frame_3d_baseline_keeps_frames_independent():
    """conv_type '3d' + temporal 'none': changing one frame's input leaves the other frames' output alone."""
    _, cfg = TINY["slat_flow"]
    torch.manual_seed(0)
    model = SLatFlow4D(cfg.replace(conv_type="3d", temporal="none"))
    _perturb(model)
    x = _voxels(1, 3, cfg.resolution, cfg.in_channels)  # odd T is fine without temporal packing
    cond = torch.randn(1, 3, 3, cfg.cond_channels)
    y = x.replace(torch.where((x.frame_index == 1)[:, None], x.feats + 1, x.feats))
    t = torch.tensor([0.5])
    a, b = model(x, t, cond), model(y, t, cond)
    same = x.frame_index != 1
    torch.testing.assert_close(a.feats[same], b.feats[same])
    assert not torch.allclose(a.feats[~same], b.feats[~same])


@pytest.mark.parametrize("name", list(TINY))
def test_save_load_is_bit_identical(name, tmp_path):
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    _perturb(model)
    model.save_pretrained(tmp_path / name)
    loaded = cls.from_pretrained(tmp_path / name)
    assert loaded.config == model.config
    torch.manual_seed(1)
    with torch.no_grad():
        a = _tensor(_run(name, model, 1, 2))
    torch.manual_seed(1)
    with torch.no_grad():
        b = _tensor(_run(name, loaded, 1, 2))
    assert torch.equal(a, b)
    assert not list(tmp_path.glob(f"{name}/*.tmp"))


@pytest.mark.parametrize("name", ["slat_flow", "gaussian_decoder"])
def test_half_precision_storage_loads_back_into_float32(name, tmp_path):
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    _perturb(model)
    model.save_pretrained(tmp_path / "fp32")
    model.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    stored = load_file(str(tmp_path / "fp16" / "model.safetensors"))
    params = dict(model.named_parameters())
    assert all(v.dtype == torch.float16 for k, v in stored.items() if k in params)
    assert all(v.dtype == model.state_dict()[k].dtype for k, v in stored.items() if k not in params)  # buffers kept
    size = lambda d: (tmp_path / d / "model.safetensors").stat().st_size  # noqa: E731
    assert size("fp16") < 0.6 * size("fp32")
    loaded = cls.from_pretrained(tmp_path / "fp16")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for k, p in loaded.named_parameters():
        torch.testing.assert_close(p, params[k].detach().half().float(), rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("name", list(TINY))
def test_one_optimizer_step_changes_every_trainable_parameter(name):
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    model = cls(cfg).train()
    _perturb(model)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _tensor(_run(name, model, 2, 2)).square().mean().backward()
    opt.step()
    unchanged = [k for k, p in model.named_parameters() if torch.equal(p, before[k])]
    assert not unchanged


def test_structure_vae_round_trip_shapes_and_parts(tmp_path):
    from ss4d.models import SparseStructureVAE

    cfg = TINY["structure_encoder"][1]
    vae = SparseStructureVAE(cfg)
    logits, mean, logvar = vae(torch.rand(2, 3, 1, 8, 8, 8), sample_posterior=True)
    assert logits.shape == (2, 3, 1, 8, 8, 8) and mean.shape == (2, 3, 8, 4, 4, 4)
    again = SparseStructureVAE.from_parts(vae.encoder, vae.decoder)
    x = torch.rand(1, 1, 1, 8, 8, 8)
    assert torch.equal(again(x)[0], vae(x)[0])
    vae.save_pretrained(tmp_path / "vae")
    assert set(SparseStructureVAE.from_pretrained(tmp_path / "vae").state_dict()) == set(vae.state_dict())


def test_strict_loading_reports_keys(tmp_path):
    cls, cfg = TINY["slat_encoder"]
    cls(cfg).save_pretrained(tmp_path / "enc")
    wider = cfg.replace(model_channels=64)
    (tmp_path / "enc" / "config.json").write_text(json.dumps({"_class_name": "SLatEncoder4D", **wider.to_dict()}))
    with pytest.raises(CheckpointMismatchError, match="shape mismatch"):
        SLatEncoder4D.from_pretrained(tmp_path / "enc")
    with pytest.raises(ValueError, match="holds a SLatEncoder4D"):
        GaussianDecoder4D.from_pretrained(tmp_path / "enc")
    with pytest.raises(FileNotFoundError, match="config.json"):
        SLatEncoder4D.from_pretrained(tmp_path / "nothing")


def test_configs_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown config keys"):
        StructureFlow4DConfig.from_dict({"model_channels": 32, "num_blokcs": 3})
    with pytest.raises(ValueError, match="conv_type"):
        SLatFlow4DConfig(conv_type="2d")
    with pytest.raises(ValueError, match="divisible"):
        StructureFlow4DConfig(resolution=5, patch_size=2)
    assert StructureFlow4DConfig.from_dict({"mlp_ratio": 4}).mlp_ratio == 4.0  # JSON ints for floats


@pytest.mark.parametrize(
    "cls,cfg,millions",
    [
        (StructureFlow4D, StructureFlow4DConfig(), 555.5),
        (SLatFlow4D, SLatFlow4DConfig(), 644.5),
        (SLatEncoder4D, SLatEncoder4DConfig(), 85.8),
        (GaussianDecoder4D, GaussianDecoder4DConfig(), 85.4),
        (SparseStructureEncoder, SparseStructureVAEConfig(), 59.3),
        (SparseStructureDecoder, SparseStructureVAEConfig(), 73.7),
    ],
)
def test_official_sizes_on_the_meta_device(cls, cfg, millions):
    """Parameter counts of the released configs (shared/reference/official_facts.md §2)."""
    with torch.device("meta"):
        model = cls(cfg)
    assert model.num_parameters() / 1e6 == pytest.approx(millions, abs=0.06)


@pytest.mark.parametrize("name", list(TINY))
def test_bfloat16_weights_take_float32_inputs(name):
    """`model.to(torch.bfloat16)` computes in bf16 and answers in the input's dtype, close to fp32."""
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    _perturb(model)
    torch.manual_seed(1)
    with torch.no_grad():
        ref = _tensor(_run(name, model, 1, 2))
    torch.manual_seed(1)
    with torch.no_grad():
        low = _tensor(_run(name, model.to(torch.bfloat16), 1, 2))
    assert low.dtype == torch.float32
    assert (low - ref).abs().max() <= 0.02 * ref.abs().max() + 1e-3
