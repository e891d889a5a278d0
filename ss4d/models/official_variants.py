"""Networks that exist only to run official SS4D checkpoints of ablation configs, bit for bit.

* :class:`StructureFlow4DInsertTemporal`: the dense structure flow with the official ``insert_temporal``
  blocks (:class:`~ss4d.layers.OfficialInsertTemporalCrossBlock`): official key names
  (``blocks.i.temp_attn.*``, ``blocks.i.adaLN_modulation_temporal.1.*``) and the official initialisation
  (Xavier everywhere, adaLN and output layer zero; the temporal layers are *not* zero). ``temporal`` in its
  config is the self-attention's own mode (``"none"``: per frame, the official ``expand_self_attn=False``;
  ``"expand"``: across frames).
"""

from dataclasses import dataclass

from ss4d.layers import OfficialInsertTemporalCrossBlock
from ss4d.models.structure_flow import StructureFlow4D, StructureFlow4DConfig

__all__ = ["StructureFlow4DInsertTemporal", "StructureFlow4DInsertTemporalConfig"]


@dataclass(frozen=True, kw_only=True)
class StructureFlow4DInsertTemporalConfig(StructureFlow4DConfig):
    temporal: str = "none"
    window: int | None = None

    def validate(self) -> None:
        super().validate()
        if self.temporal not in ("expand", "none"):
            raise ValueError(f"temporal (the self-attention's mode) must be 'expand' or 'none', got {self.temporal!r}")
        if self.share_mod:
            raise ValueError("share_mod is not supported with the official insert_temporal blocks")
        if self.window is not None and self.temporal != "expand":
            raise ValueError("window needs temporal='expand' (the official per-frame self-attention has no windows)")


class StructureFlow4DInsertTemporal(StructureFlow4D):
    config_class = StructureFlow4DInsertTemporalConfig
    block_class = OfficialInsertTemporalCrossBlock
