"""Transformer and residual blocks of the SS4D networks, with the official parameter names.

* :class:`TimestepEmbedder` - cos-first sinusoid (dim 256) + MLP (``mlp.0``, ``mlp.2``).
* :class:`FeedForward` - ``mlp.0`` Linear(C, rC), GELU(tanh), ``mlp.2`` Linear(rC, C).
* :class:`ModulatedTransformerCrossBlock` - dense 4D DiT block (structure flow): adaLN-Zero self-attention
  (temporal, windowed), per-frame cross-attention, MLP.
* :class:`ModulatedSparseTransformerCrossBlock` - the same on sparse voxels (SLat flow).
* :class:`SparseTransformerBlock` - plain pre-norm block for the 4D SLat VAE (4D windows).
* :class:`SparseResBlock` - CompNet residual block (3D / 1D temporal / 4D convs, optional resampling).

``temporal`` selects how time enters a block: ``"expand"`` (the self-attention spans frames: the
released SS4D), ``"insert"`` (per-frame self-attention plus a zero-initialised :class:`TemporalLayer`),
``"none"`` (a 3D block applied frame by frame).
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ss4d.layers.attention import MultiHeadAttention, SparseMultiHeadAttention
from ss4d.layers.norm import LayerNorm32
from ss4d.layers.sparse_conv import SparseSubMConv
from ss4d.layers.temporal import TemporalLayer
from ss4d.ops.sparse import (
    Pooling,
    PoolMap,
    SparseTensor,
    spatial_downsample,
    spatial_upsample,
    temporal_downsample,
    temporal_upsample,
)

__all__ = [
    "FeedForward",
    "ModulatedSparseTransformerCrossBlock",
    "ModulatedTransformerCrossBlock",
    "SparseResBlock",
    "SparseTransformerBlock",
    "TemporalMode",
    "TimestepEmbedder",
]

TemporalMode = Literal["expand", "insert", "none"]


class TimestepEmbedder(nn.Module):
    """``t [N]`` (already scaled, e.g. ``1000 t``) -> ``[N, C]``: ``[cos(t f), sin(t f)]`` then an MLP."""

    def __init__(
        self, channels: int, *, frequency_size: int = 256, max_period: float = 10000.0, device=None, dtype=None
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.frequency_size, self.max_period = frequency_size, max_period
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, channels, **dd), nn.SiLU(), nn.Linear(channels, channels, **dd)
        )

    def sinusoid(self, t: Float[Tensor, " n"]) -> Float[Tensor, "n f"]:
        half = self.frequency_size // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return F.pad(emb, (0, 1)) if self.frequency_size % 2 else emb

    def forward(self, t: Float[Tensor, " n"]) -> Float[Tensor, "n c"]:
        return self.mlp(self.sinusoid(t).to(self.mlp[0].weight.dtype))


class FeedForward(nn.Module):
    def __init__(self, channels: int, *, mlp_ratio: float = 4.0, device=None, dtype=None):
        super().__init__()
        hidden = int(channels * mlp_ratio)
        dd = {"device": device, "dtype": dtype}
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, **dd), nn.GELU(approximate="tanh"), nn.Linear(hidden, channels, **dd)
        )

    def forward(self, x: Float[Tensor, "*rows c"]) -> Float[Tensor, "*rows c"]:
        return self.mlp(x)


def _modulation(channels: int, parts: int, dd: dict, *, zero: bool) -> nn.Sequential:
    """``adaLN_modulation``: SiLU then Linear(C, parts * C) (key ``adaLN_modulation.1``).

    ``zero``: adaLN-Zero initialisation (all shifts, scales and gates 0 at init), as DiT / TRELLIS.
    """
    mod = _modulation_to(channels, parts * channels, dd)
    if zero:
        nn.init.zeros_(mod[1].weight)
        nn.init.zeros_(mod[1].bias)
    return mod


def _modulation_to(in_channels: int, out_channels: int, dd: dict) -> nn.Sequential:
    return nn.Sequential(nn.SiLU(), nn.Linear(in_channels, out_channels, **dd))


class _Checkpointed(nn.Module):
    use_checkpoint: bool = False

    def forward(self, *args):
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return checkpoint(self._forward, *args, use_reentrant=False)
        return self._forward(*args)


class _ModulatedCrossBlock(_Checkpointed):
    """The shared construction of the dense and sparse modulated cross blocks (official parameter names)."""

    attention_class: type[nn.Module] = MultiHeadAttention  # per-frame self / cross attention

    def __init__(
        self,
        channels: int,
        ctx_channels: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        temporal: TemporalMode = "expand",
        window: int | None = None,
        shift: bool = False,
        rope_base: float = 10000.0,
        use_rope: bool = True,
        qk_rms_norm: bool = False,
        qk_rms_norm_cross: bool = False,
        share_mod: bool = False,
        adaln_zero: bool = True,
        use_checkpoint: bool = False,
        attn_backend: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.temporal, self.share_mod, self.use_checkpoint = temporal, share_mod, use_checkpoint
        self.norm1 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6, **dd)
        self.norm2 = LayerNorm32(channels, elementwise_affine=True, eps=1e-6, **dd)
        self.norm3 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6, **dd)
        attn = {"num_heads": num_heads, "qk_rms_norm": qk_rms_norm, "attn_backend": attn_backend, **dd}
        if temporal == "expand":
            self.self_attn = TemporalLayer(
                channels, window=window, shift=shift, rope_base=rope_base, use_rope=use_rope, **attn
            )
        elif temporal in ("insert", "none"):
            self.self_attn = self.attention_class(
                channels, num_heads, kind="self", qk_rms_norm=qk_rms_norm, attn_backend=attn_backend, **dd
            )
            if temporal == "insert":
                self.temporal_attn = TemporalLayer(
                    channels, window=window, shift=shift, rope_base=rope_base, use_rope=use_rope, mode="insert", **attn
                )
        else:
            raise ValueError(f"`temporal` must be 'expand', 'insert' or 'none', got {temporal!r}")
        self.cross_attn = self.attention_class(
            channels,
            num_heads,
            kind="cross",
            ctx_channels=ctx_channels,
            qk_rms_norm=qk_rms_norm_cross,
            attn_backend=attn_backend,
            **dd,
        )
        self.mlp = FeedForward(channels, mlp_ratio=mlp_ratio, **dd)
        if not share_mod:
            self.adaLN_modulation = _modulation(channels, 6, dd, zero=adaln_zero)


class ModulatedTransformerCrossBlock(_ModulatedCrossBlock):
    """Dense 4D DiT block: ``x [B, T, M, C]``, ``emb [B, T, C]`` (per-frame timestep embedding, or
    ``[B, T, 6C]`` with ``share_mod``), ``cond [B, T, Lc, Cc]`` (per-frame condition tokens).

    ``x += gate_msa * SelfAttn(LN1(x)(1 + scale_msa) + shift_msa)``; ``x += CrossAttn(LN2(x), cond)``
    (per frame, LN2 affine); ``x += gate_mlp * MLP(LN3(x)(1 + scale_mlp) + shift_mlp)``. Self-attention by
    ``temporal``: see the module docstring; ``window``/``shift`` window it in time (frames).
    ``adaln_zero`` (default) zero-initialises the modulation, so gates start at 0 (adaLN-Zero).
    """

    def _forward(
        self, x: Float[Tensor, "b t m c"], emb: Float[Tensor, "b t e"], cond: Float[Tensor, "b t l cc"]
    ) -> Float[Tensor, "b t m c"]:
        B, T, M, C = x.shape
        if cond.shape[:2] != (B, T) or emb.shape[:2] != (B, T):
            raise ValueError(
                f"`emb` and `cond` must lead with (B, T) = {(B, T)}, got {tuple(emb.shape)}, {tuple(cond.shape)}"
            )
        mod = emb if self.share_mod else self.adaLN_modulation(emb)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.unsqueeze(2).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale_msa) + shift_msa
        # expand: attention across frames; insert / none: per frame (the 3D self-attention)
        h = self.self_attn(h) if self.temporal == "expand" else self.self_attn(h.flatten(0, 1)).view(B, T, M, C)
        x = x + gate_msa * h
        if self.temporal == "insert":
            x = x + self.temporal_attn(x)
        h = self.cross_attn(self.norm2(x).flatten(0, 1), cond.flatten(0, 1)).view(B, T, M, C)
        x = x + h
        h = self.norm3(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.mlp(h)


class ModulatedSparseTransformerCrossBlock(_ModulatedCrossBlock):
    """Sparse 4D DiT block (SLat flow): ``x`` voxels, ``emb [B*T, C]`` per entry, ``cond [B*T, Lc, Cc]``.

    As :class:`ModulatedTransformerCrossBlock`; ``temporal="expand"`` with ``window=None`` is the released
    full spacetime attention over all frames of a sample; cross-attention is per entry.
    """

    attention_class = SparseMultiHeadAttention

    def _forward(self, x: SparseTensor, emb: Float[Tensor, "e d"], cond: Float[Tensor, "e l cc"]) -> SparseTensor:
        if emb.shape[0] != x.layout.num_entries:
            raise ValueError(f"`emb` needs one row per batch entry ({x.layout.num_entries}), got {tuple(emb.shape)}")
        mod = emb if self.share_mod else self.adaLN_modulation(emb)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = x.per_entry(mod).chunk(6, dim=-1)
        h = x.replace(self.norm1(x.feats) * (1 + scale_msa) + shift_msa)
        x = x + gate_msa * self.self_attn(h).feats
        if self.temporal == "insert":
            x = x + self.temporal_attn(x)
        x = x + self.cross_attn(x.apply(self.norm2), cond)
        h = self.norm3(x.feats) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.mlp(h)


class SparseTransformerBlock(_Checkpointed):
    """Pre-norm sparse block (4D SLat VAE): ``x += Attn(LN1(x)); x += MLP(LN2(x))`` (LN without affine).

    ``temporal="expand"``: :class:`TemporalLayer` with 4D windows of ``window`` frames x ``window_xyz``^3
    voxels (``shift`` on alternate blocks); ``"none"``: 3D windows per frame (TRELLIS swin) with the same
    ``window_xyz``, or full per-frame attention when ``window_xyz`` is None.
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        temporal: Literal["expand", "none"] = "expand",
        window: int | None = 8,
        window_xyz: int | None = 8,
        shift: bool = False,
        rope_base: float = 10000.0,
        qk_rms_norm: bool = False,
        use_checkpoint: bool = False,
        attn_backend: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.use_checkpoint = use_checkpoint
        self.norm1 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6, **dd)
        self.norm2 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6, **dd)
        if temporal == "expand":
            frames, use_rope = window, True
        elif temporal == "none":
            frames, use_rope = 1, False  # one frame per window: per-frame 3D (shifted) windows
        else:
            raise ValueError(f"`temporal` must be 'expand' or 'none', got {temporal!r}")
        self.attn = TemporalLayer(
            channels,
            num_heads=num_heads,
            window=frames,
            window_xyz=window_xyz,
            shift=shift,
            rope_base=rope_base,
            use_rope=use_rope,
            qk_rms_norm=qk_rms_norm,
            attn_backend=attn_backend,
            **dd,
        )
        self.mlp = FeedForward(channels, mlp_ratio=mlp_ratio, **dd)

    def _forward(self, x: SparseTensor) -> SparseTensor:
        x = x + self.attn(x.apply(self.norm1))
        return x + self.mlp(self.norm2(x.feats))


class SparseResBlock(nn.Module):
    """CompNet residual block on sparse voxels with a timestep embedding.

    ``h = conv1(SiLU(LN1(x)))``; ``h = LN2(h)(1 + scale) + shift`` with ``(scale, shift)`` from
    ``emb_layers(emb)`` (official order); ``h = conv2(SiLU(h))`` (zero-initialised); ``return h + skip(x)``.

    Args:
        channels, out_channels: widths (``skip_connection`` is a Linear when they differ).
        emb_channels: width of ``emb``.
        conv: ``"3d"`` (3^3 per frame), ``"1d"`` (temporal (3,1,1,1)), ``"4d"`` (3^4).
        resample: ``None``; ``"down"`` (2x, returns ``(out, map)``); ``"up"`` (needs the map), on
            ``resample_axis`` ``"space"``, ``"time"`` (frame pairs) or ``"spacetime"`` (both: down = space
            then time, map = a tuple of both; up = the reverse). Resampling comes first.
        pooling: ``"mean"`` or ``"official"`` (sum / (n + 1), for official weights).

    ``emb`` has one row per batch entry of the (resampled) input; after a temporal down-sampling it may have
    twice as many rows, which are then averaged over frame pairs (as the official code).
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        out_channels: int | None = None,
        *,
        conv: Literal["3d", "1d", "4d"] = "3d",
        resample: Literal["down", "up"] | None = None,
        resample_axis: Literal["space", "time", "spacetime"] = "space",
        pooling: Pooling = "mean",
        backend: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        out_channels = out_channels or channels
        kernel = {"3d": (1, 3, 3, 3), "1d": (3, 1, 1, 1), "4d": (3, 3, 3, 3)}.get(conv)
        if kernel is None:
            raise ValueError(f"`conv` must be '3d', '1d' or '4d', got {conv!r}")
        if resample not in (None, "down", "up") or resample_axis not in ("space", "time", "spacetime"):
            raise ValueError(f"bad resampling {resample!r} on {resample_axis!r}")
        self.resample, self.resample_axis, self.pooling = resample, resample_axis, pooling
        self.out_channels = out_channels
        self.norm1 = LayerNorm32(channels, elementwise_affine=True, eps=1e-6, **dd)
        self.conv1 = SparseSubMConv(channels, out_channels, kernel, backend=backend, **dd)
        self.emb_layers = _modulation_to(emb_channels, 2 * out_channels, dd)
        self.norm2 = LayerNorm32(out_channels, elementwise_affine=False, eps=1e-6, **dd)
        self.conv2 = SparseSubMConv(out_channels, out_channels, kernel, backend=backend, **dd)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip_connection = nn.Linear(channels, out_channels, **dd) if channels != out_channels else nn.Identity()

    def forward(
        self, x: SparseTensor, emb: Float[Tensor, "e d"], pool_map: PoolMap | tuple[PoolMap, PoolMap] | None = None
    ) -> SparseTensor | tuple[SparseTensor, PoolMap | tuple[PoolMap, PoolMap]]:
        made_map: PoolMap | tuple[PoolMap, PoolMap] | None = None
        axis = self.resample_axis
        if self.resample == "down":
            if axis == "space":
                x, made_map = spatial_downsample(x, pooling=self.pooling)
            elif axis == "time":
                x, made_map = temporal_downsample(x, pooling=self.pooling)
            else:
                x.layout.packed()  # odd T fails before any work
                x, spatial_map = spatial_downsample(x, pooling=self.pooling)
                x, temporal_map = temporal_downsample(x, pooling=self.pooling)
                made_map = (spatial_map, temporal_map)
        elif self.resample == "up":
            if pool_map is None:
                raise ValueError("an up-sampling SparseResBlock needs the `pool_map` of its down-sampling")
            if axis == "space":
                x = spatial_upsample(x, pool_map)  # type: ignore[arg-type]
            elif axis == "time":
                x = temporal_upsample(x, pool_map)  # type: ignore[arg-type]
            else:
                spatial_map, temporal_map = pool_map  # type: ignore[misc]
                x = spatial_upsample(temporal_upsample(x, temporal_map), spatial_map)
        E = x.layout.num_entries
        if emb.shape[0] == 2 * E and self.resample == "down" and self.resample_axis != "space":
            emb = emb.view(E, 2, -1).mean(dim=1)
        elif emb.shape[0] != E:
            raise ValueError(f"`emb` needs {E} rows (one per batch entry), got {tuple(emb.shape)}")
        scale, shift = x.per_entry(self.emb_layers(emb)).chunk(2, dim=-1)
        h = self.conv1(x.replace(F.silu(self.norm1(x.feats))))
        h = h.replace(F.silu(self.norm2(h.feats) * (1 + scale) + shift))
        out = self.conv2(h) + self.skip_connection(x.feats)
        return (out, made_map) if made_map is not None else out
