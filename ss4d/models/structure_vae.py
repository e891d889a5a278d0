"""The sparse-structure VAE (TRELLIS, frozen and applied frame by frame in SS4D; paper §3.2).

Dense 3D conv encoder ``occupancy [1, R, R, R] -> latent [8, R/4, R/4, R/4]`` and decoder back to
occupancy logits. Per-frame: 6D inputs ``[B, T, C, R, R, R]`` are processed frame by frame (frames
flattened into the batch), 5D ``[N, C, R, R, R]`` as they are. Parameter names as TRELLIS
(``input_layer``, ``blocks.i``, ``middle_block``, ``out_layer``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.models.base import ModelConfig, ModelMixin

__all__ = [
    "SparseStructureDecoder",
    "SparseStructureEncoder",
    "SparseStructureVAE",
    "SparseStructureVAEConfig",
    "occupancy_to_coords",
    "pixel_shuffle_3d",
    "sample_diagonal_gaussian",
]


@dataclass(frozen=True, kw_only=True)
class SparseStructureVAEConfig(ModelConfig):
    """Defaults: TRELLIS ``ss_enc_conv3d_16l8`` / ``ss_dec_conv3d_16l8`` (64^3 occupancy <-> 8 x 16^3).

    ``channels`` run from the full resolution down (encoder) and are reversed by the decoder.
    """

    io_channels: int = 1
    latent_channels: int = 8
    channels: tuple[int, ...] = (32, 128, 512)
    num_res_blocks: int = 2
    num_res_blocks_middle: int = 2

    def validate(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive ints, got {self.channels}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channels) - 1)


class ChannelLayerNorm32(nn.LayerNorm):
    """LayerNorm over the channel axis of ``[N, C, ...]``, computed in float32."""

    def forward(self, x: Tensor) -> Tensor:
        h = x.float().movedim(1, -1)
        h = F.layer_norm(h, self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return h.movedim(-1, 1).to(x.dtype)


class ResBlock3d(nn.Module):
    def __init__(self, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out = out_channels or channels
        self.norm1, self.norm2 = ChannelLayerNorm32(channels), ChannelLayerNorm32(out)
        self.conv1 = nn.Conv3d(channels, out, 3, padding=1)
        self.conv2 = nn.Conv3d(out, out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip_connection = nn.Conv3d(channels, out, 1) if channels != out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip_connection(x)


class DownsampleBlock3d(nn.Module):
    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(channels, out_channels, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def pixel_shuffle_3d(x: Float[Tensor, "n c r1 r2 r3"], scale: int) -> Tensor:
    """``[N, C s^3, R, R, R] -> [N, C, sR, sR, sR]`` (channel index ``c s^3 + (i s + j) s + k``)."""
    N, C, H, W, D = x.shape
    c = C // scale**3
    x = x.reshape(N, c, scale, scale, scale, H, W, D).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(N, c, H * scale, W * scale, D * scale)


class UpsampleBlock3d(nn.Module):
    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(channels, out_channels * 8, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_shuffle_3d(self.conv(x), 2)


def _resolution_stages(
    channels: tuple[int, ...], num_res_blocks: int, resample: Callable[[int, int], nn.Module]
) -> nn.ModuleList:
    """``num_res_blocks`` res blocks at each width of ``channels``, a ``resample(c, c_next)`` block between
    consecutive widths: the encoder's (down-sampling) and the decoder's (up-sampling) ``blocks``."""
    blocks: list[nn.Module] = []
    for i, c in enumerate(channels):
        blocks += [ResBlock3d(c) for _ in range(num_res_blocks)]
        if i < len(channels) - 1:
            blocks.append(resample(c, channels[i + 1]))
    return nn.ModuleList(blocks)


def sample_diagonal_gaussian(mean: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A sample of ``N(mean, exp(logvar))``: the VAEs' posterior sample. The noise is drawn on the generator's
    device (a CPU generator keeps training runs reproducible on any device)."""
    where = generator.device if generator is not None else mean.device
    noise = torch.randn(mean.shape, generator=generator, device=where, dtype=mean.dtype).to(mean.device)
    return mean + torch.exp(0.5 * logvar) * noise


def _frames(x: Tensor, channels: int, what: str) -> tuple[Tensor, tuple[int, ...] | None]:
    if x.ndim == 6:
        return x.flatten(0, 1), x.shape[:2]
    if x.ndim != 5:
        raise ValueError(f"`{what}` must be [B, T, C, R, R, R] or [N, C, R, R, R], got {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"`{what}` has {x.shape[1]} channels, expected {channels}")
    return x, None


class SparseStructureEncoder(ModelMixin):
    config_class = SparseStructureVAEConfig

    def __init__(self, config: SparseStructureVAEConfig) -> None:
        super().__init__(config)
        ch = config.channels
        self.input_layer = nn.Conv3d(config.io_channels, ch[0], 3, padding=1)
        self.blocks = _resolution_stages(ch, config.num_res_blocks, DownsampleBlock3d)
        self.middle_block = nn.Sequential(*[ResBlock3d(ch[-1]) for _ in range(config.num_res_blocks_middle)])
        self.out_layer = nn.Sequential(
            ChannelLayerNorm32(ch[-1]), nn.SiLU(), nn.Conv3d(ch[-1], 2 * config.latent_channels, 3, padding=1)
        )

    def forward(
        self, x: Tensor, *, sample_posterior: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Occupancy (or any ``io_channels`` grid) -> ``(z, mean, logvar)``, each ``[..., 8, R/4, R/4, R/4]``."""
        h, lead = _frames(x, self.config.io_channels, "x")
        h = self.input_layer(h.to(self.input_layer.weight.dtype))
        for block in self.blocks:
            h = block(h)
        mean, logvar = self.out_layer(self.middle_block(h)).to(x.dtype).chunk(2, dim=1)
        z = sample_diagonal_gaussian(mean, logvar, generator) if sample_posterior else mean
        if lead is not None:
            z, mean, logvar = (v.unflatten(0, lead) for v in (z, mean, logvar))
        return z, mean, logvar


class SparseStructureDecoder(ModelMixin):
    config_class = SparseStructureVAEConfig

    def __init__(self, config: SparseStructureVAEConfig) -> None:
        super().__init__(config)
        ch = tuple(reversed(config.channels))
        self.input_layer = nn.Conv3d(config.latent_channels, ch[0], 3, padding=1)
        self.middle_block = nn.Sequential(*[ResBlock3d(ch[0]) for _ in range(config.num_res_blocks_middle)])
        self.blocks = _resolution_stages(ch, config.num_res_blocks, UpsampleBlock3d)
        self.out_layer = nn.Sequential(
            ChannelLayerNorm32(ch[-1]), nn.SiLU(), nn.Conv3d(ch[-1], config.io_channels, 3, padding=1)
        )

    def forward(self, z: Tensor) -> Tensor:
        """Latent ``[..., 8, r, r, r]`` -> occupancy logits ``[..., 1, 4r, 4r, 4r]``."""
        h, lead = _frames(z, self.config.latent_channels, "z")
        h = self.middle_block(self.input_layer(h.to(self.input_layer.weight.dtype)))
        for block in self.blocks:
            h = block(h)
        logits = self.out_layer(h).to(z.dtype)
        return logits.unflatten(0, lead) if lead is not None else logits


def occupancy_to_coords(logits: Float[Tensor, "b t 1 r r r"], threshold: float = 0.0) -> Tensor:
    """Active voxels ``logits > threshold`` as ``(b*T + t, x, y, z)`` int32 rows (grouped by entry)."""
    if logits.ndim != 6 or logits.shape[2] != 1:
        raise ValueError(f"`logits` must be [B, T, 1, R, R, R], got {tuple(logits.shape)}")
    B, T = logits.shape[:2]
    idx = torch.argwhere(logits[:, :, 0] > threshold)
    return torch.stack([idx[:, 0] * T + idx[:, 1], idx[:, 2], idx[:, 3], idx[:, 4]], dim=1).int()


class SparseStructureVAE(ModelMixin):
    """Encoder + decoder of the sparse-structure VAE in one model (keys ``encoder.*``, ``decoder.*``).

    SS4D keeps it frozen and applies it frame by frame; the pipeline needs only the decoder.
    """

    config_class = SparseStructureVAEConfig

    def __init__(self, config: SparseStructureVAEConfig) -> None:
        super().__init__(config)
        self.encoder = SparseStructureEncoder(config)
        self.decoder = SparseStructureDecoder(config)

    @classmethod
    def from_parts(cls, encoder: SparseStructureEncoder, decoder: SparseStructureDecoder) -> "SparseStructureVAE":
        if encoder.config != decoder.config:
            raise ValueError(f"encoder and decoder configs differ: {encoder.config} vs {decoder.config}")
        vae = cls(encoder.config)
        vae.encoder.load_state_dict(encoder.state_dict())
        vae.decoder.load_state_dict(decoder.state_dict())
        return vae

    def encode(self, occupancy: Tensor, **kwargs) -> tuple[Tensor, Tensor, Tensor]:
        return self.encoder(occupancy, **kwargs)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(
        self, occupancy: Tensor, *, sample_posterior: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``occupancy -> (logits, mean, logvar)``."""
        z, mean, logvar = self.encoder(occupancy, sample_posterior=sample_posterior, generator=generator)
        return self.decoder(z), mean, logvar
