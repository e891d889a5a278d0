"""Image condition encoders: per-frame images -> condition tokens for the flows' cross-attention.

Both encoders share one contract (:class:`ConditionEncoder`): ``images [N, 3, H, W]`` float in [0, 1]
(premultiplied onto black, resized by the pipeline to ``image_size``) -> ``tokens [N, L, C]``, the
tokens of the last layer *before* the final norm, then a non-affine LayerNorm (the official pipeline's
convention). ImageNet normalisation happens inside.

* :class:`DinoV2Encoder`: DINOv2 ViT-L/14 with registers (SS4D/TRELLIS: 518 px, 1 + 4 + 37^2 = 1374 tokens
  of 1024 channels), loaded from a **local** folder in the Hugging Face transformers format
  (``config.json`` + ``model.safetensors``, e.g. a download of ``facebook/dinov2-with-registers-large``).
  Nothing is downloaded at run time. The folder is vetted *before* transformers reads it
  (:func:`check_dinov2_folder`): its ``model_type`` must be a DINOv2 type, it may not carry ``auto_map``
  (remote code) and the weights must be safetensors; transformers then loads it with
  ``trust_remote_code=False``. :data:`DINOV2_HUB_IDS` maps the official torch.hub names
  (``dinov2_vitl14_reg``) to the transformers-format hub ids.
* :class:`TinyImageEncoder`: a small trainable ViT with the same output contract, for the shipped tiny model.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.errors import BackendUnavailableError, UnsafeModelError
from ss4d.models.base import ModelMixin
from ss4d.models.prenorm import PreNormStackConfig, PreNormTransformerLayer

__all__ = [
    "DINOV2_HUB_IDS",
    "ConditionEncoder",
    "DinoV2Encoder",
    "TinyImageEncoder",
    "TinyImageEncoderConfig",
    "check_dinov2_folder",
]

DINOV2_HUB_IDS = {
    "dinov2_vits14_reg": "facebook/dinov2-with-registers-small",
    "dinov2_vitb14_reg": "facebook/dinov2-with-registers-base",
    "dinov2_vitl14_reg": "facebook/dinov2-with-registers-large",
    "dinov2_vitg14_reg": "facebook/dinov2-with-registers-giant",
    "dinov2_vits14": "facebook/dinov2-small",
    "dinov2_vitb14": "facebook/dinov2-base",
    "dinov2_vitl14": "facebook/dinov2-large",
    "dinov2_vitg14": "facebook/dinov2-giant",
}
"""Official ``image_cond_model`` (torch.hub ``facebookresearch/dinov2`` entry) -> transformers-format hub id."""

DINOV2_MODEL_TYPES = {"dinov2": "Dinov2Model", "dinov2_with_registers": "Dinov2WithRegistersModel"}
"""The only ``config.json`` ``model_type`` values :class:`DinoV2Encoder` loads, and the class each builds."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class ConditionEncoder(Protocol):
    """What a pipeline needs of a condition encoder."""

    image_size: int
    out_channels: int

    def __call__(self, images: Tensor) -> Tensor: ...


def normalize_for_dinov2(images: Tensor, size: int) -> Tensor:
    """Resize ``[N, 3, H, W]`` RGB in [0, 1] to ``size`` (bicubic, antialiased) and ImageNet-normalise."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"`images` must be [N, 3, H, W] RGB in [0, 1], got {tuple(images.shape)}")
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def check_dinov2_folder(path: str | Path) -> str:
    """Vet a transformers-format folder before any transformers code reads it; returns its ``model_type``.

    Raises:
        UnsafeModelError: ``config.json`` is unreadable, its ``model_type`` is not a DINOv2 type, it carries
            ``auto_map`` (would run code from the folder), or there is no ``model.safetensors``.
    """
    path = Path(path)
    config = path / "config.json"
    try:
        raw = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UnsafeModelError(f"{config}: unreadable ({e}); point to a DINOv2 transformers folder") from e
    if not isinstance(raw, dict):
        raise UnsafeModelError(f"{config}: expected a JSON object; point to a DINOv2 transformers folder")
    if "auto_map" in raw:
        raise UnsafeModelError(
            f"{config} carries `auto_map` (custom code); ss4d never runs code from model folders: use "
            "facebook/dinov2-with-registers-large (`hf download facebook/dinov2-with-registers-large`)"
        )
    if raw.get("model_type") not in DINOV2_MODEL_TYPES:
        raise UnsafeModelError(
            f"{config}: model_type {raw.get('model_type')!r} is not a DINOv2 type {sorted(DINOV2_MODEL_TYPES)}; "
            "pass a DINOv2 folder, e.g. `hf download facebook/dinov2-with-registers-large --local-dir DIR`"
        )
    if not (path / "model.safetensors").is_file():
        raise UnsafeModelError(
            f"{path}: no model.safetensors (ss4d reads no pickle weights); re-save it with "
            "`model.save_pretrained(DIR, safe_serialization=True)` or download the safetensors files"
        )
    return str(raw["model_type"])


class DinoV2Encoder(nn.Module):
    """DINOv2 (with registers) from a local transformers-format folder; frozen, eval mode.

    Args:
        path: folder with ``config.json`` and weights (``model.safetensors``) of a ``Dinov2WithRegistersModel``
            or ``Dinov2Model``.
        image_size: input resolution (518 for SS4D: 37 x 37 patches of 14 px).

    Raises:
        FileNotFoundError: ``path`` is missing or incomplete (the message says how to get the weights).
        UnsafeModelError: the folder fails :func:`check_dinov2_folder`.
        BackendUnavailableError: ``transformers`` is not installed.
    """

    def __init__(self, path: str | Path, *, image_size: int = 518) -> None:
        super().__init__()
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"DINOv2 weights not found at {path} (no config.json). ss4d never downloads at run time: on a "
                "machine with internet run `huggingface-cli download facebook/dinov2-with-registers-large "
                "--local-dir <dir>` (or `save_pretrained` a transformers Dinov2WithRegistersModel) and pass <dir>."
            )
        model_type = check_dinov2_folder(path)
        try:
            import transformers
        except ImportError as e:
            raise BackendUnavailableError("DinoV2Encoder needs `transformers`: pip install transformers") from e
        model_class = getattr(transformers, DINOV2_MODEL_TYPES[model_type])
        self.model = model_class.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False, use_safetensors=True
        ).eval()
        self.model.requires_grad_(False)
        self.image_size = image_size
        self.out_channels = int(self.model.config.hidden_size)

    @classmethod
    def from_model(cls, model: nn.Module, *, image_size: int = 518) -> "DinoV2Encoder":
        """Wrap an in-memory transformers DINOv2 model (e.g. random weights for benchmarks); frozen, eval."""
        encoder = cls.__new__(cls)
        nn.Module.__init__(encoder)
        encoder.model = model.eval().requires_grad_(False)
        encoder.image_size = image_size
        encoder.out_channels = int(model.config.hidden_size)
        return encoder

    @torch.no_grad()
    def forward(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n l c"]:
        dtype = next(self.model.parameters()).dtype
        pixels = normalize_for_dinov2(images.to(dtype), self.image_size)
        hidden = self.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]  # before final norm
        return F.layer_norm(hidden, hidden.shape[-1:])


@dataclass(frozen=True, kw_only=True)
class TinyImageEncoderConfig(PreNormStackConfig):
    image_size: int = 64
    patch_size: int = 8
    num_registers: int = 1

    def validate(self) -> None:
        self.check_divisible("image_size", "patch_size")
        super().validate()


class TinyImageEncoder(ModelMixin):
    """Patch embedding + learned positions + ``num_registers`` register tokens + pre-norm transformer
    layers; output = last-layer tokens through a non-affine LayerNorm (the DINOv2 contract)."""

    config_class = TinyImageEncoderConfig

    def __init__(self, config: TinyImageEncoderConfig) -> None:
        super().__init__(config)
        c = config
        grid = c.image_size // c.patch_size
        self.patch_embed = nn.Conv2d(3, c.channels, c.patch_size, stride=c.patch_size)
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid, c.channels) * 0.02)
        self.registers = nn.Parameter(torch.randn(1, c.num_registers, c.channels) * 0.02)
        self.layers = nn.ModuleList(PreNormTransformerLayer(c.channels, c.num_heads) for _ in range(c.num_layers))

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def out_channels(self) -> int:
        return self.config.channels

    def forward(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n l c"]:
        dtype = self.patch_embed.weight.dtype
        x = self.patch_embed(normalize_for_dinov2(images, self.config.image_size).to(dtype)).flatten(2).transpose(1, 2)
        x = torch.cat([self.registers.expand(x.shape[0], -1, -1), x + self.pos_embed], dim=1)
        for layer in self.layers:
            x = layer(x)
        return F.layer_norm(x, x.shape[-1:]).to(images.dtype)
