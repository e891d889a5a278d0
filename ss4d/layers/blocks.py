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
``"none"`` (a 3D block applied frame by frame). Sub-blocks (temporal layer, attention, MLP, norm, conv,
resampling) are passed in as classes or modules, never chosen by strings (see
:mod:`ss4d.layers.registry` and docs/design.md).
"""

import math
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ss4d.layers.attention import MultiHeadAttention, SparseMultiHeadAttention
from ss4d.layers.norm import LayerNorm32
from ss4d.layers.registry import BlockFactory, register_mlp_layer, zero_output_
from ss4d.layers.sparse_conv import SparseConv3d
from ss4d.layers.temporal import TemporalLayer
from ss4d.ops.modes import TemporalMode, WindowedTemporalMode, check_choice
from ss4d.ops.sparse import PoolMap, SparseTensor

__all__ = [
    "FeedForward",
    "ModulatedSparseTransformerCrossBlock",
    "ModulatedTransformerCrossBlock",
    "SparseResBlock",
    "SparseTransformerBlock",
    "TemporalMode",
    "TimestepEmbedder",
]


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


@register_mlp_layer("feedforward")
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


class _TransformerBlock(_Checkpointed):
    """The set-up every transformer block shares: ``temporal`` checked against the class's
    ``temporal_modes``, and the pre-norms ``norm1``, ``norm2``, ... built by the injected ``norm_layer``
    (eps 1e-6 as TRELLIS; ``norm_affine[i]`` says whether norm ``i + 1`` has a learned affine)."""

    temporal_modes: Any = TemporalMode

    def __init__(
        self, channels: int, temporal: str, norm_affine: tuple[bool, ...], norm_layer: BlockFactory, *, device, dtype
    ) -> None:
        super().__init__()
        self.temporal = check_choice(temporal, self.temporal_modes, "temporal")
        for i, affine in enumerate(norm_affine, start=1):
            norm = norm_layer(channels, elementwise_affine=affine, eps=1e-6, device=device, dtype=dtype)
            self.add_module(f"norm{i}", norm)


class _ModulatedCrossBlock(_TransformerBlock):
    """The shared construction of the dense and sparse modulated cross blocks (official parameter names).

    Sub-blocks are injected: ``temporal_layer`` (the temporal attention, see :mod:`ss4d.layers.registry`),
    ``attn_layer`` (per-frame self / cross attention; default the block's dense or sparse attention),
    ``mlp_layer`` and ``norm_layer``. The defaults are the released SS4D's.
    """

    default_attn_layer: BlockFactory = MultiHeadAttention

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
        temporal_layer: BlockFactory = TemporalLayer,
        attn_layer: BlockFactory | None = None,
        mlp_layer: BlockFactory = FeedForward,
        norm_layer: BlockFactory = LayerNorm32,
        device=None,
        dtype=None,
    ) -> None:
        # norm1 (self-attention), norm2 (cross-attention, affine), norm3 (MLP)
        super().__init__(channels, temporal, (False, True, False), norm_layer, device=device, dtype=dtype)
        dd = {"device": device, "dtype": dtype}
        attn_layer = attn_layer or self.default_attn_layer
        self.share_mod, self.use_checkpoint = share_mod, use_checkpoint
        temporal_kw = {
            "num_heads": num_heads,
            "window": window,
            "shift": shift,
            "rope_base": rope_base,
            "use_rope": use_rope,
            "qk_rms_norm": qk_rms_norm,
            "attn_backend": attn_backend,
            **dd,
        }
        attn_kw = {"attn_backend": attn_backend, **dd}
        if temporal == "expand":
            self.self_attn = temporal_layer(channels, mode="expand", **temporal_kw)
        else:
            self.self_attn = attn_layer(channels, num_heads, kind="self", qk_rms_norm=qk_rms_norm, **attn_kw)
            if temporal == "insert":
                self.temporal_attn = temporal_layer(channels, mode="insert", **temporal_kw)
        self.cross_attn = attn_layer(
            channels, num_heads, kind="cross", ctx_channels=ctx_channels, qk_rms_norm=qk_rms_norm_cross, **attn_kw
        )
        self.mlp = mlp_layer(channels, mlp_ratio=mlp_ratio, **dd)
        if not share_mod:
            self.adaLN_modulation = _modulation(channels, 6, dd, zero=adaln_zero)

    def initialize_weights(self) -> None:
        """Re-apply the zero initialisations after a model-wide init (e.g. Xavier on every Linear):
        adaLN-Zero modulation and the output of an inserted temporal layer (via its ``zero_output_()``)."""
        if not self.share_mod:
            nn.init.zeros_(self.adaLN_modulation[1].weight)
            nn.init.zeros_(self.adaLN_modulation[1].bias)
        if self.temporal == "insert":
            zero_output_(self.temporal_attn)


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
        x, mlp_mod = self._self_attention_step(x, emb, cond)
        if self.temporal == "insert":
            x = x + self.temporal_attn(x)
        x = x + self.cross_attn(self.norm2(x).flatten(0, 1), cond.flatten(0, 1)).view(x.shape)
        return self._mlp_step(x, mlp_mod)

    def _self_attention_step(
        self, x: Float[Tensor, "b t m c"], emb: Float[Tensor, "b t e"], cond: Float[Tensor, "b t l cc"]
    ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Check the leading axes, ``x += gate_msa * SelfAttn(LN1(x)(1 + scale_msa) + shift_msa)``; returns
        ``x`` and the MLP's ``(shift, scale, gate)`` (for :meth:`_mlp_step`)."""
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
        return x + gate_msa * h, (shift_mlp, scale_mlp, gate_mlp)

    def _mlp_step(
        self, x: Float[Tensor, "b t m c"], mlp_mod: tuple[Tensor, Tensor, Tensor]
    ) -> Float[Tensor, "b t m c"]:
        shift_mlp, scale_mlp, gate_mlp = mlp_mod
        return x + gate_mlp * self.mlp(self.norm3(x) * (1 + scale_mlp) + shift_mlp)


class ModulatedSparseTransformerCrossBlock(_ModulatedCrossBlock):
    """Sparse 4D DiT block (SLat flow): ``x`` voxels, ``emb [B*T, C]`` per entry, ``cond [B*T, Lc, Cc]``.

    As :class:`ModulatedTransformerCrossBlock`; ``temporal="expand"`` with ``window=None`` is the released
    full spacetime attention over all frames of a sample; cross-attention is per entry.
    """

    default_attn_layer = SparseMultiHeadAttention

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


class SparseTransformerBlock(_TransformerBlock):
    """Pre-norm sparse block (4D SLat VAE): ``x += Attn(LN1(x)); x += MLP(LN2(x))`` (LN without affine).

    ``temporal="expand"``: the temporal layer with 4D windows of ``window`` frames x ``window_xyz``^3
    voxels (``shift`` on alternate blocks); ``"none"``: 3D windows per frame (TRELLIS swin) with the same
    ``window_xyz``, or full per-frame attention when ``window_xyz`` is None. ``temporal_layer``,
    ``mlp_layer`` and ``norm_layer`` are injected (see :mod:`ss4d.layers.registry`).
    """

    temporal_modes = WindowedTemporalMode

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        temporal: WindowedTemporalMode = "expand",
        window: int | None = 8,
        window_xyz: int | None = 8,
        shift: bool = False,
        rope_base: float = 10000.0,
        qk_rms_norm: bool = False,
        use_checkpoint: bool = False,
        attn_backend: str = "auto",
        temporal_layer: BlockFactory = TemporalLayer,
        mlp_layer: BlockFactory = FeedForward,
        norm_layer: BlockFactory = LayerNorm32,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(channels, temporal, (False, False), norm_layer, device=device, dtype=dtype)  # norm1, norm2
        dd = {"device": device, "dtype": dtype}
        self.use_checkpoint = use_checkpoint
        # "none": one frame per window, no RoPE: per-frame 3D (shifted) windows
        frames, use_rope = (window, True) if temporal == "expand" else (1, False)
        self.attn = temporal_layer(
            channels,
            mode="expand",
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
        self.mlp = mlp_layer(channels, mlp_ratio=mlp_ratio, **dd)

    def _forward(self, x: SparseTensor) -> SparseTensor:
        x = x + self.attn(x.apply(self.norm1))
        return x + self.mlp(self.norm2(x.feats))


class SparseResBlock(nn.Module):
    """CompNet residual block on sparse voxels with a timestep embedding.

    ``x = resample(x)``; ``h = conv1(SiLU(LN1(x)))``; ``h = LN2(h)(1 + scale) + shift`` with
    ``(scale, shift)`` from ``emb_layers(emb)`` (official order); ``h = conv2(SiLU(h))`` (zero-initialised);
    ``return h + skip(x)``.

    Args:
        channels, out_channels: widths (``skip_connection`` is a Linear when they differ).
        emb_channels: width of ``emb``.
        conv: the conv factory, called ``conv(in, out, backend=, device=, dtype=)``: e.g.
            :class:`SparseConv3d` (3^3 per frame), :class:`SparseTemporalConv1d`, :class:`SparseConv4d`,
            :class:`FactorizedSparseConv4d`; ``conv2`` is zeroed through its ``zero_output_()``.
        resample: ``None`` or a parameter-free resampling module applied first: a down-sampler
            (:class:`SpatialDownsample`, :class:`TemporalPack`, :class:`SpacetimeDownsample`; the block then
            returns ``(out, map)``) or an up-sampler (:class:`SpatialUpsample`, :class:`TemporalUnpack`,
            :class:`SpacetimeUpsample`; ``forward`` then needs that map). It holds no weights, so the
            state-dict keys are those of the official block.

    ``emb`` has one row per batch entry of the (resampled) input; when the resampling merged frame pairs it
    may have one row per input entry instead, which are then averaged over the pairs (as the official code).
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        out_channels: int | None = None,
        *,
        conv: BlockFactory = SparseConv3d,
        resample: nn.Module | None = None,
        backend: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        out_channels = out_channels or channels
        if resample is not None and getattr(resample, "direction", None) not in ("down", "up"):
            raise ValueError(f"`resample` must be a down- or up-sampling module of ss4d.layers, got {resample!r}")
        self.resample = resample
        self.out_channels = out_channels
        self.norm1 = LayerNorm32(channels, elementwise_affine=True, eps=1e-6, **dd)
        self.conv1 = conv(channels, out_channels, backend=backend, **dd)
        self.emb_layers = _modulation_to(emb_channels, 2 * out_channels, dd)
        self.norm2 = LayerNorm32(out_channels, elementwise_affine=False, eps=1e-6, **dd)
        self.conv2 = conv(out_channels, out_channels, backend=backend, **dd)
        zero_output_(self.conv2)
        self.skip_connection = nn.Linear(channels, out_channels, **dd) if channels != out_channels else nn.Identity()

    @property
    def direction(self) -> str | None:
        """``"down"``, ``"up"`` or None: what the block's resampling does."""
        return None if self.resample is None else self.resample.direction

    def forward(
        self, x: SparseTensor, emb: Float[Tensor, "e d"], pool_map: PoolMap | tuple[PoolMap, PoolMap] | None = None
    ) -> SparseTensor | tuple[SparseTensor, PoolMap | tuple[PoolMap, PoolMap]]:
        made_map: PoolMap | tuple[PoolMap, PoolMap] | None = None
        entries_in = x.layout.num_entries
        if self.direction == "down":
            x, made_map = self.resample(x)
        elif self.direction == "up":
            if pool_map is None:
                raise ValueError("an up-sampling SparseResBlock needs the `pool_map` of its down-sampling")
            x = self.resample(x, pool_map)
        E = x.layout.num_entries
        if emb.shape[0] == 2 * E == entries_in:  # frame pairs were merged: one embedding per pair
            emb = emb.view(E, 2, -1).mean(dim=1)
        elif emb.shape[0] != E:
            raise ValueError(f"`emb` needs {E} rows (one per batch entry), got {tuple(emb.shape)}")
        scale, shift = x.per_entry(self.emb_layers(emb)).chunk(2, dim=-1)
        h = self.conv1(x.replace(F.silu(self.norm1(x.feats))))
        h = h.replace(F.silu(self.norm2(h.feats) * (1 + scale) + shift))
        out = self.conv2(h) + self.skip_connection(x.feats)
        return (out, made_map) if made_map is not None else out
