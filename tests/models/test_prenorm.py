"""The pre-norm transformer shared by the tiny image encoder and its pre-training probe."""

import pytest
import torch
from jaxtyping import TypeCheckError

from ss4d.models import TinyImageEncoder, TinyImageEncoderConfig
from ss4d.models.prenorm import PreNormTransformerLayer
from ss4d.training.probe import StructureProbe, StructureProbeConfig

NORMS_AND_MLP = {f"{m}.{p}" for m in ("norm1", "norm2", "mlp.mlp.0", "mlp.mlp.2") for p in ("weight", "bias")}


def _layer0_keys(module: torch.nn.Module) -> set[str]:
    return {k.removeprefix("layers.0.") for k in module.state_dict() if k.startswith("layers.0.")}


def test_encoder_and_probe_keep_their_state_dict_keys():
    """The shared layer registers self-attention as `attn` (the encoder, as in checkpoints/ss4d-tiny) and
    cross-attention as `cross` (the probe, as in training checkpoints)."""
    encoder = TinyImageEncoder(TinyImageEncoderConfig(image_size=16, patch_size=4, channels=16, num_layers=1,
                                                      num_heads=2))  # fmt: skip
    probe = StructureProbe(StructureProbeConfig(channels=16, num_heads=2, num_layers=1, resolution=8, patch=4))
    attn = {f"attn.{m}.{p}" for m in ("to_qkv", "to_out") for p in ("weight", "bias")}
    cross = {f"cross.{m}.{p}" for m in ("to_q", "to_kv", "to_out") for p in ("weight", "bias")}
    assert _layer0_keys(encoder) == NORMS_AND_MLP | attn
    assert _layer0_keys(probe) == NORMS_AND_MLP | cross


def test_layer_is_the_pre_norm_residual_formula():
    torch.manual_seed(0)
    x, context = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    layer = PreNormTransformerLayer(8, 2)
    h = x + layer.attn(layer.norm1(x))
    torch.testing.assert_close(layer(x), h + layer.mlp(layer.norm2(h)))
    cross = PreNormTransformerLayer(8, 2, kind="cross")
    h = x + cross.cross(cross.norm1(x), context)
    torch.testing.assert_close(cross(x, context), h + cross.mlp(cross.norm2(h)))
    with pytest.raises(ValueError, match="context"):
        cross(x)


def test_bad_kind_and_indivisible_widths_raise():
    with pytest.raises((ValueError, TypeCheckError), match="kind"):  # TypeCheckError: the tests' runtime type check
        PreNormTransformerLayer(8, 2, kind="both")
    with pytest.raises(ValueError, match="channels 30 must be divisible by num_heads 4"):
        TinyImageEncoderConfig(channels=30)
    with pytest.raises(ValueError, match="image_size 60 must be divisible by patch_size 8"):
        TinyImageEncoderConfig(image_size=60)
    with pytest.raises(ValueError, match="channels 30 must be divisible by num_heads 4"):
        StructureProbeConfig(channels=30)
    with pytest.raises(ValueError, match="resolution 10 must be divisible by patch 4"):
        StructureProbeConfig(resolution=10)
