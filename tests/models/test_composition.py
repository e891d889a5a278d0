"""Swapped sub-blocks and CompNet variants are config values: they build, initialise, save and load."""

import json

import pytest
import torch
from torch import nn

from ss4d.layers import FactorizedSparseConv4d, register_temporal_layer, temporal_layers
from ss4d.models import SLatFlow4D, StructureFlow4D
from ss4d.models.slat_flow import CompNetVariant, compnet_variants, register_compnet_variant

from .test_models import TINY, _run, _voxels


class GatedFrameMixer(nn.Module):
    """A user temporal layer: a gated projection of each sample's frame mean (no attention at all)."""

    def __init__(self, channels, *, mode, device=None, dtype=None, **_):
        super().__init__()
        self.proj = nn.Linear(channels, channels, device=device, dtype=dtype)
        self.gate = nn.Parameter(torch.zeros(channels, device=device, dtype=dtype))

    def zero_output_(self):
        nn.init.zeros_(self.gate)

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            return self.gate * self.proj(x.mean(dim=1, keepdim=True)).expand_as(x)
        means = torch.zeros(x.layout.batch_size, x.num_channels, dtype=x.dtype).index_add_(
            0, x.sample_index.long(), x.feats
        )
        return x.replace(self.gate * self.proj(means[x.sample_index.long()]))


@pytest.fixture
def mixer():
    register_temporal_layer("test-gated-mixer")(GatedFrameMixer)
    yield "test-gated-mixer"
    temporal_layers.unregister("test-gated-mixer")


@pytest.mark.parametrize("name", ["structure_flow", "slat_flow"])
@pytest.mark.parametrize("temporal", ["expand", "insert"])
def test_a_registered_temporal_layer_is_a_config_value_that_round_trips(name, temporal, mixer, tmp_path):
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    model = cls(cfg.replace(temporal_layer=mixer, temporal=temporal)).eval()  # initialize_weights ran
    layers = [b.self_attn if temporal == "expand" else b.temporal_attn for b in model.blocks]
    assert all(isinstance(layer, GatedFrameMixer) for layer in layers)
    if temporal == "insert":  # Xavier re-init did not undo the zero output
        assert all(not layer.gate.any() for layer in layers)
    with torch.no_grad():
        for layer in layers:
            layer.gate.fill_(0.5)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["temporal_layer"] == mixer
    loaded = cls.from_pretrained(tmp_path)
    assert isinstance(loaded.blocks[0].self_attn if temporal == "expand" else loaded.blocks[0].temporal_attn,
                      GatedFrameMixer)  # fmt: skip
    torch.manual_seed(1)
    a = _run(name, model, 2, 2)
    torch.manual_seed(1)
    b = _run(name, loaded, 2, 2)
    torch.testing.assert_close(getattr(a, "feats", a), getattr(b, "feats", b), rtol=0, atol=0)


def test_an_unregistered_layer_name_fails_at_config_time_and_at_load(mixer, tmp_path):
    _, cfg = TINY["structure_flow"]
    with pytest.raises(ValueError, match="unknown temporal layer 'nope'; known: .*temporal"):
        cfg.replace(temporal_layer="nope")
    StructureFlow4D(cfg.replace(temporal_layer=mixer)).save_pretrained(tmp_path)
    temporal_layers.unregister(mixer)
    try:
        with pytest.raises(ValueError, match=f"unknown temporal layer '{mixer}'"):
            StructureFlow4D.from_pretrained(tmp_path)
    finally:
        register_temporal_layer(mixer)(GatedFrameMixer)


@pytest.mark.parametrize("name", ["structure_flow", "slat_flow"])
def test_insert_mode_at_init_equals_the_per_frame_model(name):
    """The inserted temporal layers start at zero output, so the model equals its temporal='none' twin."""
    cls, cfg = TINY[name]
    torch.manual_seed(0)
    inserted = cls(cfg.replace(temporal="insert")).eval()
    plain = cls(cfg.replace(temporal="none")).eval()
    missing, unexpected = plain.load_state_dict(inserted.state_dict(), strict=False)
    assert not missing and all(".temporal_attn." in k for k in unexpected)
    with torch.no_grad():  # break adaLN-Zero so the blocks do something
        for model in (inserted, plain):
            for block in model.blocks:
                torch.manual_seed(2)
                nn.init.normal_(block.adaLN_modulation[1].weight, std=0.1)
    torch.manual_seed(1)
    a = _run(name, inserted, 2, 2)
    torch.manual_seed(1)
    b = _run(name, plain, 2, 2)
    torch.testing.assert_close(getattr(a, "feats", a), getattr(b, "feats", b))


def test_a_registered_compnet_variant_builds_from_its_name(tmp_path):
    register_compnet_variant("test-factorized", CompNetVariant(temporal_conv=FactorizedSparseConv4d))
    try:
        _, cfg = TINY["slat_flow"]
        model = SLatFlow4D(cfg.replace(conv_type="test-factorized")).eval()
        assert isinstance(model.input_blocks_t[0].conv1, FactorizedSparseConv4d)
        x = _voxels(1, 4, cfg.resolution, cfg.in_channels)
        out = model(x, torch.rand(1), torch.randn(1, 4, 3, cfg.cond_channels))
        assert out.same_sites(x)
        model.save_pretrained(tmp_path)
        loaded = SLatFlow4D.from_pretrained(tmp_path)
        assert loaded.config.conv_type == "test-factorized"
    finally:
        compnet_variants.unregister("test-factorized")
    with pytest.raises(ValueError, match="at most one place"):
        CompNetVariant(temporal_conv=FactorizedSparseConv4d, bare_pack=True)
