"""`SLatFlow4D`: the stage-2 denoiser over structured spacetime latents, with CompNet (paper §3.4).

CompNet (``conv_type="3d_1d"``, the released model): input Linear -> 3D res blocks, the last with 2x
spatial downsampling -> 1D temporal res blocks, the last merging frames (2k, 2k+1) -> + absolute 3D
embedding -> transformer blocks on the compressed sequence (timestep embedding averaged over each frame
pair, condition tokens of both frames concatenated, full spacetime self-attention with temporal RoPE on
the compressed frame index) -> temporal res blocks unpacking to exactly the pre-merge voxels (skip concat)
-> 3D res blocks upsampling to exactly the input voxels (skip concat) -> LayerNorm -> output Linear.

Ablations: ``"4d"`` (3^4 res blocks, the last downsampling space and time together), ``"3d_4d"`` (3^4 convs
in the temporal stage), ``"none"`` (plain frame-pair merge/unmerge, no temporal convs), ``"3d"`` (no temporal
compression at all: TRELLIS's per-frame CompNet). With ``temporal="none"`` the transformer attends within
each (compressed) frame only; ``conv_type="3d"`` + ``temporal="none"`` is the per-frame 3D baseline.
Every variant is one row of :data:`compnet_variants`; a new one is one :func:`register_compnet_variant`
call (see ``examples/custom_compnet_variant.py``). Res blocks are assembled from the public layers (conv
classes and weightless resamplers), so the state-dict keys are the official ones.

``x`` voxels ``[n, in_channels]`` on a spacetime layout with **even T** (the pipeline pads odd clips),
``t [B]`` or ``[B, T]`` in [0, 1] (times ``time_scale``), ``cond [B, T, L, C_cond]`` -> velocity on the
same sites in the same order.
"""

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.errors import FrameCountError
from ss4d.layers import (
    ModulatedSparseTransformerCrossBlock,
    SpacetimeDownsample,
    SpacetimeUpsample,
    SparseConv3d,
    SparseConv4d,
    SparseResBlock,
    SparseTemporalConv1d,
    SpatialDownsample,
    SpatialUpsample,
    TemporalPack,
    TemporalUnpack,
)
from ss4d.layers.registry import BlockFactory
from ss4d.models.dit import DiTFlow, DiTFlowConfig
from ss4d.ops.modes import Pooling, check_choice
from ss4d.ops.registry import Registry
from ss4d.ops.sparse import SparseTensor

__all__ = ["CompNetVariant", "SLatFlow4D", "SLatFlow4DConfig", "compnet_variants", "register_compnet_variant"]


@dataclass(frozen=True)
class CompNetVariant:
    """One row of the CompNet table: how :class:`SLatFlow4D` compresses spacetime around its transformer.

    Args:
        spatial_conv: conv factory of the spatial res blocks (``input_blocks`` / ``out_blocks``), whose last
            input block down-samples space 2x (and its first output block up-samples).
        temporal_conv: conv factory of a temporal stage (``input_blocks_t`` / ``out_blocks_t``) whose last
            input block merges frame pairs; None for no temporal res blocks.
        resample_spacetime: the spatial stage's resampling also merges frame pairs (``"4d"``).
        bare_pack: merge frame pairs with a weightless :class:`TemporalPack` (``"none"``).

    The transformer sees frame pairs when any of the last three is set (then T must be even).
    """

    spatial_conv: BlockFactory = SparseConv3d
    temporal_conv: BlockFactory | None = None
    resample_spacetime: bool = False
    bare_pack: bool = False

    def __post_init__(self) -> None:
        if (self.temporal_conv is not None) + self.resample_spacetime + self.bare_pack > 1:
            raise ValueError("a CompNet variant merges frame pairs in at most one place")

    @property
    def packs_frames(self) -> bool:
        return self.temporal_conv is not None or self.resample_spacetime or self.bare_pack

    def resamplers(self, pooling: Pooling) -> tuple[nn.Module, nn.Module]:
        """The (down, up) resampling modules of the spatial stage (weightless)."""
        if self.resample_spacetime:
            return SpacetimeDownsample(pooling=pooling), SpacetimeUpsample()
        return SpatialDownsample(pooling=pooling), SpatialUpsample()


compnet_variants: Registry[CompNetVariant] = Registry("CompNet variant (conv_type)")
"""``SLatFlow4DConfig.conv_type`` -> :class:`CompNetVariant`: the one table of CompNet variants."""


def register_compnet_variant(name: str, variant: CompNetVariant) -> CompNetVariant:
    """Add a CompNet variant under ``name`` (then ``SLatFlow4DConfig(conv_type=name)`` builds it)."""
    return compnet_variants.register(name, variant)


register_compnet_variant("3d_1d", CompNetVariant(temporal_conv=SparseTemporalConv1d))  # the released model
register_compnet_variant("3d_4d", CompNetVariant(temporal_conv=SparseConv4d))
register_compnet_variant("4d", CompNetVariant(spatial_conv=SparseConv4d, resample_spacetime=True))
register_compnet_variant("none", CompNetVariant(bare_pack=True))
register_compnet_variant("3d", CompNetVariant())  # TRELLIS's per-frame CompNet: no temporal compression


@dataclass(frozen=True, kw_only=True)
class SLatFlow4DConfig(DiTFlowConfig):
    """Defaults: the released SS4D SLat flow (TRELLIS ``slat_flow_img_dit_L_64l8p2`` + CompNet '3D_1D').

    ``conv_type`` names a row of :data:`compnet_variants`. ``pooling``: ``"mean"`` for new models;
    ``"official"`` (sum / (n + 1)) reproduces the official down-sampling and is set by the converters for
    official / TRELLIS weights. ``temporal_layer`` / ``attn_layer`` / ``mlp_layer`` / ``norm_layer`` name
    registered sub-blocks.
    """

    resolution: int = 64
    window: int | None = None
    io_block_channels: int = 128
    num_io_res_blocks: int = 2
    num_io_temporal_blocks: int = 2
    conv_type: str = "3d_1d"
    use_skip_connection: bool = True
    pooling: Pooling = "mean"

    @property
    def compnet(self) -> CompNetVariant:
        return compnet_variants.get(self.conv_type)

    def validate(self) -> None:
        super().validate()
        self.compnet  # noqa: B018 - unknown variants fail here, listing the registered ones
        check_choice(self.pooling, Pooling, "pooling")
        if self.num_io_res_blocks < 1 or self.num_io_temporal_blocks < 1:
            raise ValueError("num_io_res_blocks and num_io_temporal_blocks must be >= 1")


class SLatFlow4D(DiTFlow):
    config_class = SLatFlow4DConfig

    def __init__(self, config: SLatFlow4DConfig, *, backend: str = "auto", attn_backend: str = "auto") -> None:
        super().__init__(config)
        c = config
        C, chs, n, nt = c.model_channels, c.io_block_channels, c.num_io_res_blocks, c.num_io_temporal_blocks
        variant = c.compnet
        skip = 2 if c.use_skip_connection else 1
        self._embedders()
        self.input_layer = nn.Linear(c.in_channels, chs)
        stage = partial(_res_stage, emb_channels=C, inner_channels=C, skip=skip, backend=backend)
        down, up = variant.resamplers(c.pooling)
        self.input_blocks, self.out_blocks = stage(variant.spatial_conv, chs, n, down, up)
        if variant.temporal_conv is not None:
            pack, unpack = TemporalPack(pooling=c.pooling), TemporalUnpack()
            self.input_blocks_t, self.out_blocks_t = stage(variant.temporal_conv, C, nt, pack, unpack)
        if variant.bare_pack:  # weightless frame-pair merge around the transformer
            self.pack, self.unpack = TemporalPack(pooling=c.pooling), TemporalUnpack()
        self._trunk(ModulatedSparseTransformerCrossBlock, attn_backend)
        self.out_layer = nn.Linear(chs, c.out_channels)
        self.initialize_weights()

    def forward(
        self,
        x: SparseTensor,
        t: Float[Tensor, " b"] | Float[Tensor, "b t"],
        cond: Float[Tensor, "b t l cc"],
    ) -> SparseTensor:
        c = self.config
        B, T = x.layout.batch_size, x.layout.num_frames
        variant = c.compnet
        packs = variant.packs_frames
        if packs and T % 2:
            raise FrameCountError(
                f"SLatFlow4D packs frame pairs and needs an even frame count, got T={T}; pad the clip with its "
                "last frame and crop the result (SS4DPipeline does this for you)"
            )
        if x.num_channels != c.in_channels:
            raise ValueError(f"`x` has {x.num_channels} channels, the model expects {c.in_channels}")
        if cond.shape[:2] != (B, T) or cond.shape[-1] != c.cond_channels:
            raise ValueError(f"`cond` must be [B={B}, T={T}, L, {c.cond_channels}], got {tuple(cond.shape)}")
        t = t[:, None].expand(B, T) if t.ndim == 1 else t
        emb = self.t_embedder((t * c.time_scale).flatten())  # [B*T, C], one per entry
        dtype = self.input_layer.weight.dtype  # compute in the model's dtype, answer in the input's
        if packs:  # the transformer sees frame pairs: mean timestep embedding, both frames' tokens
            emb_pairs = emb.view(B * T // 2, 2, -1).mean(dim=1)
            cond_pairs = cond.to(dtype).reshape(B * T // 2, 2 * cond.shape[2], cond.shape[3])
        else:
            emb_pairs, cond_pairs = emb, cond.to(dtype).flatten(0, 1)
        if c.share_mod:
            emb_pairs = self.adaLN_modulation(emb_pairs)

        h = x.to(dtype=dtype).apply(self.input_layer)
        skips, space_maps = [], []
        for block in self.input_blocks:
            h = _run(block, h, emb, space_maps)
            skips.append(h)
        skips_t, time_maps = [], []
        for block in getattr(self, "input_blocks_t", ()):
            h = _run(block, h, emb, time_maps)
            skips_t.append(h)
        if variant.bare_pack:
            h, pool_map = self.pack(h)
            time_maps.append(pool_map)
        h = h + self.pos_embedder.embed(h.xyz).to(h.dtype)
        for block in self.blocks:
            h = block(h, emb_pairs, cond_pairs)
        if variant.bare_pack:
            h = self.unpack(h, time_maps.pop())
        for block, skip in zip(getattr(self, "out_blocks_t", ()), reversed(skips_t), strict=True):
            h = _run(block, _cat(h, skip, c.use_skip_connection), emb, time_maps)
        for block, skip in zip(self.out_blocks, reversed(skips), strict=True):
            h = _run(block, _cat(h, skip, c.use_skip_connection), emb, space_maps)
        return h.apply(lambda f: self.out_layer(F.layer_norm(f, (f.shape[-1],))).to(x.dtype))


def _res_stage(
    conv: BlockFactory, channels: int, count: int, down: nn.Module, up: nn.Module, *, emb_channels: int,
    inner_channels: int, skip: int, backend: str,
) -> tuple[nn.ModuleList, nn.ModuleList]:  # fmt: skip
    """A CompNet stage: ``count`` res blocks in (the last resampling ``down`` to ``inner_channels``) and the
    mirror ``count`` out (the first resampling ``up``, each taking the skip concatenation when ``skip == 2``)."""
    kw = {"conv": conv, "backend": backend}
    blocks_in = [SparseResBlock(channels, emb_channels, channels, **kw) for _ in range(count - 1)]
    blocks_in.append(SparseResBlock(channels, emb_channels, inner_channels, resample=down, **kw))
    blocks_out = [SparseResBlock(skip * inner_channels, emb_channels, channels, resample=up, **kw)]
    blocks_out += [SparseResBlock(skip * channels, emb_channels, channels, **kw) for _ in range(count - 1)]
    return nn.ModuleList(blocks_in), nn.ModuleList(blocks_out)


def _cat(h: SparseTensor, skip: SparseTensor, use_skip: bool) -> SparseTensor:
    return h.replace(torch.cat([h.feats, skip.feats], dim=1)) if use_skip else h


def _run(block: SparseResBlock, h: SparseTensor, emb: Tensor, maps: list) -> SparseTensor:
    """Run a res block; push the map of a down-sampling block, pop it for the matching up-sampling one."""
    if block.direction == "down":
        h, pool_map = block(h, emb)
        maps.append(pool_map)
        return h
    if block.direction == "up":
        return block(h, emb, maps.pop())
    return block(h, emb)
