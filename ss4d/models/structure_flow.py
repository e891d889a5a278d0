"""`StructureFlow4D`: the stage-1 denoiser, a dense DiT over per-frame structure latents (paper §3.2).

Input ``x [B, T, C_in, R, R, R]`` (noisy structure latents), ``t [B]`` or ``[B, T]`` in [0, 1] (the model
multiplies by ``config.time_scale``, 1000 as TRELLIS), ``cond [B, T, L, C_cond]`` (per-frame condition
tokens) -> velocity of the same shape as ``x``. Patchify, absolute 3D embedding of the patch grid,
timestep embedding, 4D blocks with windowed temporal self-attention (shift on odd blocks) and per-frame
cross-attention, final non-affine LayerNorm, zero-initialised output layer.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers import ModulatedTransformerCrossBlock
from ss4d.models.dit import DiTFlow, DiTFlowConfig

__all__ = ["StructureFlow4D", "StructureFlow4DConfig", "patchify", "unpatchify"]


@dataclass(frozen=True, kw_only=True)
class StructureFlow4DConfig(DiTFlowConfig):
    """Defaults are the released SS4D structure flow (TRELLIS ``ss_flow_img_dit_L_16l8`` + temporal args).

    ``temporal_layer`` / ``attn_layer`` / ``mlp_layer`` / ``norm_layer`` name registered sub-blocks.
    """

    patch_size: int = 1

    def validate(self) -> None:
        super().validate()
        self.check_divisible("resolution", "patch_size")


def patchify(x: Float[Tensor, "n c r1 r2 r3"], p: int) -> Float[Tensor, "n l cp"]:
    """``[N, C, R, R, R] -> [N, (R/p)^3, C p^3]``: channel index ``c * p^3 + (i * p + j) * p + k`` (TRELLIS)."""
    N, C, *res = x.shape
    g = [r // p for r in res]
    x = x.reshape(N, C, g[0], p, g[1], p, g[2], p).permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(N, C * p**3, g[0] * g[1] * g[2]).transpose(1, 2)


def unpatchify(h: Float[Tensor, "n l cp"], p: int, channels: int, resolution: int) -> Float[Tensor, "n c r r r"]:
    N = h.shape[0]
    g = resolution // p
    x = h.transpose(1, 2).reshape(N, channels, p, p, p, g, g, g).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(N, channels, resolution, resolution, resolution)


class StructureFlow4D(DiTFlow):
    config_class = StructureFlow4DConfig
    block_class: type[nn.Module] = ModulatedTransformerCrossBlock  # a variant model swaps the block

    def __init__(self, config: StructureFlow4DConfig, *, attn_backend: str = "auto") -> None:
        super().__init__(config)
        c = config
        C, p = c.model_channels, c.patch_size
        self._embedders()
        self.input_layer = nn.Linear(c.in_channels * p**3, C)
        self._trunk(self.block_class, attn_backend)
        self.out_layer = nn.Linear(C, c.out_channels * p**3)
        self.initialize_weights()

    def pos_emb(self) -> Float[Tensor, "l c"]:
        """Absolute embedding of the patch grid, index ``x * G^2 + y * G + z`` (computed, not stored)."""
        g = self.config.resolution // self.config.patch_size
        axis = torch.arange(g, device=self.input_layer.weight.device)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        return self.pos_embedder.embed(grid)

    def forward(
        self,
        x: Float[Tensor, "b t ci r r r"],
        t: Float[Tensor, " b"] | Float[Tensor, "b t"],
        cond: Float[Tensor, "b t l cc"],
    ) -> Float[Tensor, "b t co r r r"]:
        c = self.config
        B, T = x.shape[:2]
        if x.shape[2:] != (c.in_channels, c.resolution, c.resolution, c.resolution):
            raise ValueError(
                f"`x` must be [B, T, {c.in_channels}, {c.resolution}, {c.resolution}, {c.resolution}], "
                f"got {tuple(x.shape)}"
            )
        if cond.shape[:2] != (B, T) or cond.shape[-1] != c.cond_channels:
            raise ValueError(f"`cond` must be [B={B}, T={T}, L, {c.cond_channels}], got {tuple(cond.shape)}")
        t = t[:, None].expand(B, T) if t.ndim == 1 else t
        dtype = self.input_layer.weight.dtype  # compute in the model's dtype, answer in the input's
        cond = cond.to(dtype)
        h = self.input_layer(patchify(x.flatten(0, 1).to(dtype), c.patch_size)) + self.pos_emb().to(dtype)
        h = h.view(B, T, h.shape[1], c.model_channels)
        emb = self.t_embedder((t * c.time_scale).flatten()).view(B, T, -1)
        if c.share_mod:
            emb = self.adaLN_modulation(emb)
        for block in self.blocks:
            h = block(h, emb, cond)
        h = F.layer_norm(h, (c.model_channels,))
        out = self.out_layer(h).flatten(0, 1)
        out = unpatchify(out, c.patch_size, c.out_channels, c.resolution).view(B, T, c.out_channels, *x.shape[3:])
        return out.to(x.dtype)
