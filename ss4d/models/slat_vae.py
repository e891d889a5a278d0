"""The 4D structured-latent VAE: `SLatEncoder4D` and `GaussianDecoder4D` (paper §3.3; TRELLIS SLat VAE
with 4D-window temporal attention and temporal RoPE).

Both are sparse transformers: input Linear, + absolute 3D embedding of the voxel xyz, blocks with 4D
windows of ``window`` frames x ``window_xyz``^3 voxels (shift ``window // 2`` on odd blocks), final
non-affine LayerNorm, output Linear. The encoder outputs the 8-channel latent (mean, logvar, optional
posterior sample); the decoder outputs ``num_gaussians`` Gaussians per voxel per frame.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers import AbsolutePositionEmbedder, SparseTransformerBlock
from ss4d.models.base import ModelMixin, TransformerConfig
from ss4d.models.structure_vae import sample_diagonal_gaussian
from ss4d.ops.modes import WindowedTemporalMode
from ss4d.ops.sparse import SparseTensor
from ss4d.representations import GaussianActivation, Gaussians, ScalingActivation

__all__ = [
    "GaussianDecoder4D",
    "GaussianDecoder4DConfig",
    "SLatEncoder4D",
    "SLatEncoder4DConfig",
    "hammersley_offsets",
]


@dataclass(frozen=True, kw_only=True)
class _SparseTransformerConfig(TransformerConfig):
    temporal_modes: ClassVar[Any] = WindowedTemporalMode

    resolution: int = 64
    model_channels: int = 768
    latent_channels: int = 8
    num_blocks: int = 12
    temporal: WindowedTemporalMode = "expand"
    window_xyz: int | None = 8
    qk_rms_norm: bool = False

    def validate(self) -> None:
        super().validate()
        if self.attn_layer is not None:
            raise ValueError("attn_layer: the VAE's blocks attend through their temporal layer; set temporal_layer")


@dataclass(frozen=True, kw_only=True)
class SLatEncoder4DConfig(_SparseTransformerConfig):
    """Defaults: TRELLIS ``slat_enc_swin8_B_64l8`` with SS4D's 4D windows (in_channels = DINOv2 features)."""

    in_channels: int = 1024


@dataclass(frozen=True, kw_only=True)
class GaussianDecoder4DConfig(_SparseTransformerConfig):
    """Defaults: TRELLIS ``slat_dec_gs_swin8_B_64l8gs32`` with SS4D's 4D windows."""

    num_gaussians: int = 32
    voxel_size: float = 1.5
    perturb_offset: bool = True
    lr_xyz: float = 1.0
    lr_features_dc: float = 1.0
    lr_scaling: float = 1.0
    lr_rotation: float = 0.1
    lr_opacity: float = 1.0
    scaling_bias: float = 0.004
    opacity_bias: float = 0.1
    filter_3d: float = 9e-4
    scaling_activation: ScalingActivation = "softplus"

    def validate(self) -> None:
        super().validate()
        self.activation  # noqa: B018  (GaussianActivation checks the activation fields)

    @property
    def activation(self) -> GaussianActivation:
        """The activations of the Gaussians this decoder outputs."""
        return GaussianActivation(self.scaling_bias, self.opacity_bias, self.filter_3d,
                                  scaling_activation=self.scaling_activation)  # fmt: skip

    @property
    def out_channels(self) -> int:
        return self.num_gaussians * (3 + 3 + 3 + 4 + 1)


class _SparseTransformer(ModelMixin):
    def __init__(
        self, config: _SparseTransformerConfig, in_channels: int, out_channels: int, attn_backend: str
    ) -> None:
        super().__init__(config)
        C = config.model_channels
        self.input_layer = nn.Linear(in_channels, C)
        self.pos_embedder = AbsolutePositionEmbedder(C, 3)
        self.blocks = nn.ModuleList(
            SparseTransformerBlock(
                C, window_xyz=config.window_xyz, shift=i % 2 == 1, attn_backend=attn_backend, **config.block_kwargs()
            )
            for i in range(config.num_blocks)
        )
        self.out_layer = nn.Linear(C, out_channels)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def trunk(self, x: SparseTensor) -> SparseTensor:
        """Input Linear + APE -> blocks -> LayerNorm -> output Linear (computed in the model's dtype)."""
        h = x.to(dtype=self.input_layer.weight.dtype).apply(self.input_layer)
        h = h + self.pos_embedder(h.xyz).to(h.dtype)
        for block in self.blocks:
            h = block(h)
        return h.apply(lambda f: self.out_layer(F.layer_norm(f, (f.shape[-1],))).to(x.dtype))


class SLatEncoder4D(_SparseTransformer):
    """Voxel features ``[n, in_channels]`` -> latent ``[n, latent_channels]`` (same sites)."""

    config_class = SLatEncoder4DConfig

    def __init__(self, config: SLatEncoder4DConfig, *, attn_backend: str = "auto") -> None:
        super().__init__(config, config.in_channels, 2 * config.latent_channels, attn_backend)

    def forward(
        self, x: SparseTensor, *, sample_posterior: bool = False, generator: torch.Generator | None = None
    ) -> tuple[SparseTensor, SparseTensor, SparseTensor]:
        """Returns ``(z, mean, logvar)``; ``z = mean`` unless ``sample_posterior``."""
        if x.num_channels != self.config.in_channels:
            raise ValueError(f"input has {x.num_channels} channels, the encoder expects {self.config.in_channels}")
        out = self.trunk(x)
        mean, logvar = out.feats.chunk(2, dim=-1)
        z = sample_diagonal_gaussian(mean, logvar, generator) if sample_posterior else mean
        return x.replace(z), x.replace(mean), x.replace(logvar)


def hammersley_offsets(num: int, voxel_size: float) -> Float[Tensor, "g 3"]:
    """``atanh((Hammersley_3(i, num) * 2 - 1) / voxel_size)``: the fixed offset perturbation (TRELLIS)."""

    def radical_inverse(base: int, n: int) -> float:
        value, scale = 0.0, 1.0 / base
        while n:
            value += (n % base) * scale
            n //= base
            scale /= base
        return value

    points = torch.tensor([[i / num, radical_inverse(2, i), radical_inverse(3, i)] for i in range(num)])
    return torch.atanh((points * 2 - 1) / voxel_size)


class GaussianDecoder4D(_SparseTransformer):
    """Latent ``[n, latent_channels]`` -> one :class:`Gaussians` per batch entry (frame), G per voxel.

    Channel layout of the output layer (G Gaussians): xyz offsets (G, 3) | DC colour (G, 1, 3) |
    scaling (G, 3) | rotation (G, 4) | opacity (G, 1). Offsets: ``tanh(raw * lr + P) * voxel_size / 2``
    voxels with ``P`` = :func:`hammersley_offsets` (buffer ``offset_perturbation``).
    """

    config_class = GaussianDecoder4DConfig

    def __init__(self, config: GaussianDecoder4DConfig, *, attn_backend: str = "auto") -> None:
        super().__init__(config, config.latent_channels, config.out_channels, attn_backend)
        self.register_buffer("offset_perturbation", hammersley_offsets(config.num_gaussians, config.voxel_size))

    def forward(self, x: SparseTensor) -> list[Gaussians]:
        if x.num_channels != self.config.latent_channels:
            raise ValueError(f"latent has {x.num_channels} channels, the decoder expects {self.config.latent_channels}")
        return self.to_gaussians(self.trunk(x))

    def to_gaussians(self, out: SparseTensor) -> list[Gaussians]:
        c: GaussianDecoder4DConfig = self.config  # type: ignore[assignment]
        G, n = c.num_gaussians, out.num_voxels
        widths = [3 * G, 3 * G, 3 * G, 4 * G, G]
        raw_xyz, dc, scaling, rotation, opacity = out.feats.split(widths, dim=-1)
        offset = raw_xyz.reshape(n, G, 3) * c.lr_xyz
        if c.perturb_offset:
            offset = offset + self.offset_perturbation.to(offset.dtype)
        offset = torch.tanh(offset) / c.resolution * 0.5 * c.voxel_size
        centres = (out.xyz.to(offset.dtype) + 0.5) / c.resolution
        fields = {
            "_xyz": (centres[:, None] + offset).reshape(n * G, 3),
            "_features_dc": (dc * c.lr_features_dc).reshape(n * G, 1, 3),
            "_scaling": (scaling * c.lr_scaling).reshape(n * G, 3),
            "_rotation": (rotation * c.lr_rotation).reshape(n * G, 4),
            "_opacity": (opacity * c.lr_opacity).reshape(n * G, 1),
        }
        activation = c.activation
        bounds = (out.sites.entry_offsets() * G).tolist()
        return [
            Gaussians(**{k: v[bounds[e] : bounds[e + 1]] for k, v in fields.items()}, activation=activation)
            for e in range(out.layout.num_entries)
        ]
