"""Image feature extractors for per-voxel feature aggregation (``make_clip``, ``load_rendered_clip``).

They live on the models floor because DINOv2 is a model; ``ss4d.data`` takes any extractor as a
callable and imports nothing from ``ss4d.models``.

An extractor maps one RGBA view ``[4, S, S]`` (float, [0, 1]) to a feature map ``[C, s, s]``; voxel features
are then sampled bilinearly at each voxel's projection, so ``s`` need not equal ``S``.

* :func:`~ss4d.data.synthetic.rgb_features`: 6 cheap channels for tiny models (no weights needed);
* :class:`DinoV2Features`: the TRELLIS recipe -- DINOv2 patch tokens of the last layer *before* the final
  norm (CLS and register tokens dropped), on the view premultiplied onto black, from a local weights folder.
"""

from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.data.synthetic import rgb_features
from ss4d.errors import InputError
from ss4d.models.condition import DinoV2Encoder, normalize_for_dinov2

__all__ = ["DinoV2Features", "feature_extractor", "rgb_features"]


class DinoV2Features:
    """DINOv2 patch-token maps ``[C, image_size / patch, image_size / patch]`` (1024 x 37 x 37 for ViT-L/14 at 518).

    Args:
        path: local transformers folder of a ``Dinov2WithRegistersModel`` / ``Dinov2Model`` (never downloaded).
        image_size: the views are resized to this size first (518 in TRELLIS).
        device: where DINOv2 runs.
    """

    def __init__(self, path: str | Path, *, image_size: int = 518, device: str | torch.device = "cpu") -> None:
        self.encoder = DinoV2Encoder(path, image_size=image_size).to(device)
        config = self.encoder.model.config
        if image_size % config.patch_size:
            raise InputError(f"image_size {image_size} must be a multiple of DINOv2's patch size {config.patch_size}")
        self.grid = image_size // config.patch_size
        self.num_prefix = 1 + int(getattr(config, "num_register_tokens", 0))
        self.channels = int(config.hidden_size)
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, image: Float[Tensor, "4 s s"]) -> Float[Tensor, "c g g"]:
        rgb = (image[:3] * image[3:4])[None].to(self.device)
        dtype = next(self.encoder.model.parameters()).dtype
        pixels = normalize_for_dinov2(rgb.to(dtype), self.encoder.image_size)
        hidden = self.encoder.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
        patches = hidden[0, self.num_prefix :]  # [g*g, C], row-major patches
        return patches.T.reshape(self.channels, self.grid, self.grid).float().cpu()


def feature_extractor(name: str, *, dinov2: str | Path | None = None, device: str = "cpu"):
    """The extractor called ``name`` ("rgb" or "dinov2"; the latter needs ``dinov2`` = a local weights folder)."""
    if name == "rgb":
        return rgb_features
    if name == "dinov2":
        if dinov2 is None:
            raise InputError("features 'dinov2' need the local DINOv2 weights folder (--dinov2 PATH)")
        return DinoV2Features(dinov2, device=device)
    raise InputError(f"unknown feature extractor {name!r}; choose 'rgb' or 'dinov2'")
