"""The official ``insert_temporal`` ablation of the dense SS4D block, reproduced for weight parity.

Official SS4D (``ModulatedTransformerCross4DBlock(insert_temporal=True)``, docs/official_release.md) adds a
separate temporal attention ``temp_attn`` after the self-attention of each structure-flow block:

1. ``x += gate_msa * SelfAttn(LN1(x)(1 + scale_msa) + shift_msa)`` (per frame, or across frames when
   the model also sets ``expand_self_attn``);
2. ``(shift_t, scale_t, gate_t) = adaLN_modulation_temporal(emb)`` (SiLU + Linear(C, 3C));
   ``x += gate_t * TempAttn(norm2(x)(1 + scale_t) + shift_t)``: full attention over all frames of a sample,
   temporal RoPE with base 10000 whatever the model's ``rope_base``, the model's q/k RMS norm;
   ``norm2`` is the *affine* LayerNorm the 3D block uses before cross-attention;
3. ``x += CrossAttn(norm4(x), cond)`` with ``norm4`` a new *non-affine* LayerNorm;
4. the modulated MLP as usual.

Unlike ss4d's own ``temporal="insert"`` (a zero-initialised :class:`~ss4d.layers.TemporalLayer` with its
own norm, so a 3D model inflates exactly), the official layers are Xavier-initialised (the gate is not
zero at start) and the cross-attention loses its affine pre-norm. Use this block only to run official
checkpoints that set ``insert_temporal``.
"""

from typing import Any, Literal

from jaxtyping import Float
from torch import Tensor, nn

from ss4d.layers.blocks import ModulatedTransformerCrossBlock
from ss4d.layers.norm import LayerNorm32
from ss4d.layers.temporal import TemporalLayer

__all__ = ["OfficialInsertTemporalCrossBlock"]

OFFICIAL_TEMP_ATTN_ROPE_BASE = 10000.0  # the official temp_attn is built without the model's rope_base
# the block arguments the official temp_attn is built with too
_SHARED_WITH_TEMP_ATTN = ("num_heads", "use_rope", "qk_rms_norm", "attn_backend", "device", "dtype")


class OfficialInsertTemporalCrossBlock(ModulatedTransformerCrossBlock):
    """Dense 4D DiT block with the official inserted temporal attention (see the module docstring).

    Same arguments as :class:`ModulatedTransformerCrossBlock` (``kwargs`` go to it); ``temporal`` is the
    self-attention's mode (``"none"``: per frame, ``"expand"``: across frames) and ``share_mod`` is refused
    (the official code crashes with it: its temporal modulation reads the shared 6C vector).
    Extra parameters (official names): ``temp_attn.*``, ``adaLN_modulation_temporal.1.*``.
    """

    def __init__(
        self,
        channels: int,
        ctx_channels: int,
        *,
        temporal: Literal["expand", "none"] = "none",
        share_mod: bool = False,
        **kwargs: Any,
    ) -> None:
        if temporal not in ("expand", "none"):
            raise ValueError(f"`temporal` (the self-attention's mode) must be 'expand' or 'none', got {temporal!r}")
        if share_mod:
            raise ValueError("the official insert_temporal block does not work with share_mod (shape mismatch)")
        super().__init__(channels, ctx_channels, temporal=temporal, **kwargs)
        # full attention (no window) with the official RoPE base, and the block's own values of the shared
        # arguments (TemporalLayer's defaults for them are the block's, so only those given are passed)
        shared = {k: kwargs[k] for k in _SHARED_WITH_TEMP_ATTN if k in kwargs}
        self.temp_attn = TemporalLayer(
            channels, window=None, mode="expand", rope_base=OFFICIAL_TEMP_ATTN_ROPE_BASE, **shared
        )
        dd = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype")}
        self.norm4 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6, **dd)
        self.adaLN_modulation_temporal = nn.Sequential(nn.SiLU(), nn.Linear(channels, 3 * channels, **dd))

    def _forward(
        self, x: Float[Tensor, "b t m c"], emb: Float[Tensor, "b t e"], cond: Float[Tensor, "b t l cc"]
    ) -> Float[Tensor, "b t m c"]:
        x, mlp_mod = self._self_attention_step(x, emb, cond)
        shift_t, scale_t, gate_t = self.adaLN_modulation_temporal(emb).unsqueeze(2).chunk(3, dim=-1)
        x = x + gate_t * self.temp_attn(self.norm2(x) * (1 + scale_t) + shift_t)
        x = x + self.cross_attn(self.norm4(x).flatten(0, 1), cond.flatten(0, 1)).view(x.shape)
        return self._mlp_step(x, mlp_mod)
