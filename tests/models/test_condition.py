import pytest
import torch
import torch.nn.functional as F
from jaxtyping import TypeCheckError

from ss4d.errors import BackendUnavailableError
from ss4d.models import ConditionEncoder, DinoV2Encoder, TinyImageEncoder, TinyImageEncoderConfig


def test_dino_without_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download facebook/dinov2-with-registers-large"):
        DinoV2Encoder(tmp_path / "nowhere")


def test_dino_returns_prenorm_tokens_through_a_plain_layer_norm(tiny_dino):
    enc = DinoV2Encoder(tiny_dino, image_size=56)
    assert isinstance(enc, ConditionEncoder) and enc.out_channels == 32
    images = torch.rand(3, 3, 56, 56)
    tokens = enc(images)
    assert tokens.shape == (3, 1 + 4 + 16, 32)  # CLS + registers + 4x4 patches
    out = enc.model(pixel_values=(images - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                    / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), output_hidden_states=True)  # fmt: skip
    prenorm = out.hidden_states[-1]
    torch.testing.assert_close(enc.model.layernorm(prenorm), out.last_hidden_state)  # it is the pre-norm state
    torch.testing.assert_close(tokens, F.layer_norm(prenorm, (32,)))
    assert tokens.mean(-1).abs().max() < 1e-4  # non-affine: zero mean, unit variance per token


def test_dino_resizes_other_image_sizes(tiny_dino):
    enc = DinoV2Encoder(tiny_dino, image_size=56)
    assert enc(torch.rand(1, 3, 80, 80)).shape == (1, 21, 32)


def test_dino_reports_missing_transformers(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text('{"model_type": "dinov2_with_registers"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "transformers":
            raise ImportError("no transformers")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(BackendUnavailableError, match="pip install"):
        DinoV2Encoder(tmp_path)


def test_tiny_encoder_contract_and_training_step(tmp_path):
    cfg = TinyImageEncoderConfig(image_size=32, patch_size=8, channels=32, num_layers=2, num_heads=2)
    enc = TinyImageEncoder(cfg)
    assert isinstance(enc, ConditionEncoder) and enc.image_size == 32
    tokens = enc(torch.rand(2, 3, 32, 32))
    assert tokens.shape == (2, 1 + 16, 32)
    tokens.square().mean().backward()
    assert all(p.grad is not None for p in enc.parameters())
    enc.save_pretrained(tmp_path / "tiny")
    again = TinyImageEncoder.from_pretrained(tmp_path / "tiny")
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(again(images), enc.eval()(images))
    with pytest.raises((ValueError, TypeCheckError), match=r"\[N, 3, H, W\]|images"):
        enc(torch.rand(2, 32, 32))


def test_dino_matches_the_official_x_prenorm_contract(tiny_dino):
    """Official conditioning: all tokens (CLS, 4 registers, patches) after the last block, before DINOv2's final
    norm (``x_prenorm``), through a parameter-free LayerNorm (eps 1e-5). Reference: the blocks run by hand."""
    enc = DinoV2Encoder(tiny_dino, image_size=56)
    images = torch.rand(2, 3, 70, 70)
    pixels = F.interpolate(images, size=(56, 56), mode="bicubic", align_corners=False, antialias=True)
    pixels = (pixels - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        x = enc.model.embeddings(pixels)
        assert x.shape[1] == 1 + 4 + 16
        for block in enc.model.encoder.layer:
            out = block(x)
            x = out[0] if isinstance(out, tuple) else out
        reference = F.layer_norm(x, (32,), eps=1e-5)
        torch.testing.assert_close(enc(images), reference, rtol=0, atol=1e-6)
        post_norm = F.layer_norm(enc.model.layernorm(x), (32,), eps=1e-5)  # the wrong (post-norm) tokens differ
        assert (post_norm - reference).abs().max() > 1e-3


@pytest.mark.parametrize(
    "change,match",
    [
        ({"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}, "auto_map"),
        ({"model_type": "evil_vit"}, "not a DINOv2 type"),
    ],
)
def test_dino_folder_with_remote_code_or_foreign_type_is_refused_before_transformers(tiny_dino, monkeypatch,
                                                                                     change, match):  # fmt: skip
    import json

    import transformers

    from ss4d.errors import UnsafeModelError

    config = json.loads((tiny_dino / "config.json").read_text())
    (tiny_dino / "config.json").write_text(json.dumps({**config, **change}))
    for name in ("AutoModel", "Dinov2Model", "Dinov2WithRegistersModel", "AutoConfig"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(UnsafeModelError, match=match):
        DinoV2Encoder(tiny_dino)


def test_dino_folder_without_safetensors_is_refused(tiny_dino):
    from ss4d.errors import UnsafeModelError

    (tiny_dino / "model.safetensors").rename(tiny_dino / "pytorch_model.bin")
    with pytest.raises(UnsafeModelError, match="no model.safetensors"):
        DinoV2Encoder(tiny_dino)
