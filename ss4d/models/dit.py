"""What the two flow transformers share (`StructureFlow4D`, `SLatFlow4D`): the config fields of a
modulated DiT trunk, its construction (timestep embedder, optional shared adaLN, hybrid positional
encoding, the modulated cross blocks with their injected sub-blocks) and TRELLIS's initialisation."""

from dataclasses import dataclass

from torch import nn

from ss4d.layers import HybridPositionalEncoding, TimestepEmbedder
from ss4d.models.base import ModelMixin, TransformerConfig

__all__ = ["DiTFlow", "DiTFlowConfig"]


@dataclass(frozen=True, kw_only=True)
class DiTFlowConfig(TransformerConfig):
    """The fields of a flow's transformer (defaults: the released SS4D sizes)."""

    resolution: int = 16
    in_channels: int = 8
    model_channels: int = 1024
    cond_channels: int = 1024
    out_channels: int = 8
    num_blocks: int = 24
    use_rope: bool = True
    qk_rms_norm: bool = True
    qk_rms_norm_cross: bool = False
    share_mod: bool = False
    time_scale: float = 1000.0


class DiTFlow(ModelMixin):
    """Builds and initialises the shared parts; subclasses add their input / output layers around them."""

    config: DiTFlowConfig

    def _embedders(self) -> None:
        """``t_embedder`` and, with ``share_mod``, the model-level ``adaLN_modulation`` (official names)."""
        C = self.config.model_channels
        self.t_embedder = TimestepEmbedder(C)
        if self.config.share_mod:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))

    def _trunk(self, block_class: type[nn.Module], attn_backend: str) -> None:
        """``pos_embedder`` (hybrid: the absolute part is added to the tokens) and the ``blocks``, shifted
        windows on odd blocks."""
        c = self.config
        C = c.model_channels
        self.pos_embedder = HybridPositionalEncoding(C, C // c.heads, rope_base=c.rope_base)
        self.blocks = nn.ModuleList(
            block_class(
                C,
                c.cond_channels,
                shift=c.window is not None and i % 2 == 1,
                use_rope=c.use_rope,
                qk_rms_norm_cross=c.qk_rms_norm_cross,
                share_mod=c.share_mod,
                attn_backend=attn_backend,
                **c.block_kwargs(),
            )
            for i in range(c.num_blocks)
        )

    def initialize_weights(self) -> None:
        """TRELLIS's init: Xavier Linear (zero bias), N(0, 0.02) timestep MLP, zero adaLN (and an inserted
        temporal layer's output, through the blocks), zero output layer; sparse convs keep their own init."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:
            block.initialize_weights()
        mods = [self.adaLN_modulation[1]] if self.config.share_mod else []
        for layer in [*mods, self.out_layer]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
