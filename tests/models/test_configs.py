"""The transformer configs share `TransformerConfig`: their field names and defaults (what config.json holds)
are pinned here, and old config.json files (fields in another order) load unchanged."""

import json
from pathlib import Path

import pytest
from jaxtyping import TypeCheckError

from ss4d.models import (
    GaussianDecoder4DConfig,
    SLatEncoder4DConfig,
    SLatFlow4DConfig,
    StructureFlow4DConfig,
    TinyImageEncoderConfig,
)

REPO = Path(__file__).resolve().parents[2]
LAYERS = {"temporal_layer": "temporal", "attn_layer": None, "mlp_layer": "feedforward", "norm_layer": "layernorm32"}
TRUNK = {"num_heads": None, "num_head_channels": 64, "mlp_ratio": 4.0, "rope_base": 10000.0, "temporal": "expand"}
DIT = {**LAYERS, **TRUNK, "in_channels": 8, "model_channels": 1024, "cond_channels": 1024, "out_channels": 8,
       "num_blocks": 24, "use_rope": True, "qk_rms_norm": True, "qk_rms_norm_cross": False, "share_mod": False,
       "time_scale": 1000.0}  # fmt: skip
VAE = {**LAYERS, **TRUNK, "resolution": 64, "model_channels": 768, "latent_channels": 8, "num_blocks": 12,
       "window": 8, "window_xyz": 8, "qk_rms_norm": False}  # fmt: skip
SLAT_FLOW = {**DIT, "resolution": 64, "window": None, "io_block_channels": 128, "num_io_res_blocks": 2,
             "num_io_temporal_blocks": 2, "conv_type": "3d_1d", "use_skip_connection": True,
             "pooling": "mean"}  # fmt: skip
DECODER = {**VAE, "num_gaussians": 32, "voxel_size": 1.5, "perturb_offset": True, "lr_xyz": 1.0, "lr_features_dc": 1.0,
           "lr_scaling": 1.0, "lr_rotation": 0.1, "lr_opacity": 1.0, "scaling_bias": 0.004, "opacity_bias": 0.1,
           "filter_3d": 9e-4, "scaling_activation": "softplus"}  # fmt: skip
ENCODER = {"image_size": 64, "patch_size": 8, "channels": 128, "num_layers": 2, "num_heads": 4, "num_registers": 1}
DEFAULTS = {
    StructureFlow4DConfig: {**DIT, "resolution": 16, "window": 8, "patch_size": 1},
    SLatFlow4DConfig: SLAT_FLOW,
    SLatEncoder4DConfig: {**VAE, "in_channels": 1024},
    GaussianDecoder4DConfig: DECODER,
    TinyImageEncoderConfig: ENCODER,
}


@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_field_names_and_defaults_are_unchanged(cls):
    assert cls().to_dict() == DEFAULTS[cls]


@pytest.mark.parametrize("component", ["condition_encoder", "structure_flow", "slat_flow", "slat_decoder"])
def test_shipped_config_json_loads_whatever_the_field_order(component):
    raw = json.loads((REPO / "checkpoints" / "ss4d-tiny" / component / "config.json").read_text())
    classes = {"TinyImageEncoder": TinyImageEncoderConfig, "StructureFlow4D": StructureFlow4DConfig,
               "SLatFlow4D": SLatFlow4DConfig, "GaussianDecoder4D": GaussianDecoder4DConfig}  # fmt: skip
    cls = classes[raw["_class_name"]]
    stored = {k: v for k, v in raw.items() if not k.startswith("_")}
    config = cls.from_dict(stored)
    assert cls.from_dict(dict(reversed(stored.items()))) == config
    assert {k: config.to_dict()[k] for k in stored} == stored


def test_temporal_modes_and_window_are_checked_per_model():
    assert StructureFlow4DConfig(temporal="insert").temporal == "insert"
    vae = SLatEncoder4DConfig()
    object.__setattr__(vae, "temporal", "insert")  # past the tests' runtime type check of the Literal annotation
    with pytest.raises(ValueError, match="`temporal` must be one of 'expand', 'none'; got 'insert'"):
        vae.validate()
    for cls in (StructureFlow4DConfig, GaussianDecoder4DConfig):
        with pytest.raises(ValueError, match="window must be >= 1"):
            cls(window=0)
        with pytest.raises(ValueError, match="model_channels 100 must be divisible by heads 3"):
            cls(model_channels=100, num_heads=3)


def test_block_kwargs_come_from_the_trunk_fields():
    c = GaussianDecoder4DConfig(model_channels=64, num_head_channels=16, window=4, rope_base=100.0)
    kw = c.block_kwargs()
    layers = {"temporal_layer", "mlp_layer", "norm_layer"}  # attn_layer=None: each block keeps its own attention
    trunk = {k: v for k, v in kw.items() if k not in layers}
    assert trunk == {"num_heads": 4, "mlp_ratio": 4.0, "temporal": "expand", "window": 4, "rope_base": 100.0,
                     "qk_rms_norm": False}  # fmt: skip
    assert set(kw) >= layers


def test_gaussian_decoder_activation_fields_are_checked():
    assert GaussianDecoder4DConfig(scaling_activation="exp").activation.scaling_activation == "exp"
    bad = GaussianDecoder4DConfig()
    object.__setattr__(bad, "scaling_activation", "relu")  # past the tests' runtime type check of the Literal
    with pytest.raises((ValueError, TypeCheckError), match="scaling_activation"):  # the tests' beartype checks first
        bad.validate()
    with pytest.raises(ValueError, match="scaling_bias must be > 0"):
        GaussianDecoder4DConfig(scaling_bias=0.0)
    with pytest.raises(ValueError, match="opacity_bias must be in"):
        GaussianDecoder4DConfig(opacity_bias=1.0)
