"""Positional encodings: absolute 3D sinusoidal, 1D temporal RoPE, 3D RoPE, and the hybrid of them.

The SS4D "hybrid 4D encoding" (docs/design.md, "The blocks") = :class:`AbsolutePositionEmbedder` on integer voxel xyz,
added to the tokens once, plus :class:`RotaryEmbedding` on the frame index inside every temporal
self-attention (queries and keys, interleaved pairs, before the q/k RMS norm).
"""

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

__all__ = ["AbsolutePositionEmbedder", "HybridPositionalEncoding", "RotaryEmbedding", "apply_rotary"]


class AbsolutePositionEmbedder(nn.Module):
    """Sinusoidal embedding of integer coordinates (TRELLIS layout).

    ``freq_dim = channels // in_channels // 2``, ``w_j = 10000^(-j / freq_dim)``; per axis
    ``[sin(c w) | cos(c w)]``; axes concatenated in order; zero-padded at the end to ``channels``.
    """

    def __init__(self, channels: int, in_channels: int = 3) -> None:
        super().__init__()
        self.channels, self.in_channels = channels, in_channels
        self.freq_dim = channels // in_channels // 2
        if self.freq_dim < 1:
            raise ValueError(f"`channels` ({channels}) must be >= 2 * in_channels ({in_channels})")

    def forward(self, coords: Int[Tensor, "n a"] | Float[Tensor, "n a"]) -> Float[Tensor, "n c"]:
        if coords.ndim != 2 or coords.shape[1] != self.in_channels:
            raise ValueError(f"`coords` must be [n, {self.in_channels}], got {tuple(coords.shape)}")
        freqs = 1.0 / 10000 ** (torch.arange(self.freq_dim, device=coords.device, dtype=torch.float32) / self.freq_dim)
        angles = coords.float()[:, :, None] * freqs  # [n, a, f]
        emb = torch.cat([angles.sin(), angles.cos()], dim=-1).reshape(coords.shape[0], -1)
        pad = self.channels - emb.shape[1]
        return torch.nn.functional.pad(emb, (0, pad)) if pad else emb


def apply_rotary(x: Float[Tensor, "*rows h d"], angles: Float[Tensor, "*arows d2"]) -> Float[Tensor, "*rows h d"]:
    """Rotate interleaved pairs ``(x[2j], x[2j+1])`` by ``angles[..., j]`` (the same for every head).

    ``angles`` broadcasts against ``x`` without its head axis. ``d2`` may be less than ``d / 2``: the
    remaining dims are left unrotated.
    """
    d2 = angles.shape[-1]
    rot, rest = x[..., : 2 * d2], x[..., 2 * d2 :]
    compute = torch.promote_types(x.dtype, torch.float32)  # at least fp32; fp64 stays fp64
    pairs = rot.to(compute).reshape(*rot.shape[:-1], d2, 2)
    angles = angles.to(compute)
    cos, sin = angles.cos()[..., None, :], angles.sin()[..., None, :]  # broadcast over heads
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).to(x.dtype)
    return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out


class RotaryEmbedding(nn.Module):
    """RoPE over ``in_channels`` integer position axes for heads of ``head_dim`` (interleaved pairs).

    ``freq_dim = head_dim // 2 // in_channels`` frequencies per axis, ``theta_j = base^(-j / freq_dim)``;
    1D temporal RoPE (``in_channels=1``) rotates all ``head_dim`` dims (the official ``rope_t``). Only
    relative positions matter: adding a constant to every position leaves ``q . k`` unchanged.
    """

    def __init__(self, head_dim: int, in_channels: int = 1, *, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"`head_dim` must be even for RoPE, got {head_dim}")
        self.head_dim, self.in_channels, self.base = head_dim, in_channels, float(base)
        self.freq_dim = head_dim // 2 // in_channels
        if self.freq_dim < 1:
            raise ValueError(f"`head_dim` {head_dim} too small for {in_channels} RoPE axes")

    def angles(self, positions: Int[Tensor, "*l a"] | Float[Tensor, "*l a"]) -> Float[Tensor, "*l d2"]:
        """Rotation angles ``[..., in_channels * freq_dim]`` (float64) for positions ``[..., in_channels]``."""
        j = torch.arange(self.freq_dim, device=positions.device, dtype=torch.float64)
        freqs = self.base ** (-j / self.freq_dim)
        return (positions.double()[..., :, None] * freqs).flatten(-2)

    def forward(
        self, x: Float[Tensor, "*batch l h d"], positions: Int[Tensor, "*l a"] | Float[Tensor, "*l a"]
    ) -> Float[Tensor, "*batch l h d"]:
        """Rotate ``x [..., L, H, d]`` by ``positions [..., L, in_channels]`` (or ``[L]`` for 1D)."""
        if positions.shape == x.shape[:-2] or positions.ndim == 1:  # one position per token: add the axis
            positions = positions.unsqueeze(-1)
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"RoPE built for head_dim {self.head_dim}, got {x.shape[-1]}")
        return apply_rotary(x, self.angles(positions))


class HybridPositionalEncoding(nn.Module):
    """SS4D's hybrid 4D encoding: absolute 3D sinusoid on xyz (tokens) + 1D RoPE on the frame (q, k).

    ``embed(xyz)`` gives the additive token embedding; ``rotate(q_or_k, frame)`` the temporal rotation.
    """

    def __init__(self, channels: int, head_dim: int, *, rope_base: float = 10000.0) -> None:
        super().__init__()
        self.absolute = AbsolutePositionEmbedder(channels, 3)
        self.temporal = RotaryEmbedding(head_dim, 1, base=rope_base)

    def embed(self, xyz: Int[Tensor, "n 3"]) -> Float[Tensor, "n c"]:
        return self.absolute(xyz)

    def rotate(self, x: Float[Tensor, "*batch l h d"], frame: Int[Tensor, "*l"]) -> Float[Tensor, "*batch l h d"]:
        return self.temporal(x, frame)
