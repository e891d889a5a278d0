"""Floor 3: the SS4D networks, each with a frozen config dataclass and ``save_pretrained`` /
``from_pretrained`` (config.json + model.safetensors)."""

from ss4d.models.base import LoadReport, ModelConfig, ModelMixin
from ss4d.models.condition import (
    DINOV2_HUB_IDS,
    ConditionEncoder,
    DinoV2Encoder,
    TinyImageEncoder,
    TinyImageEncoderConfig,
    check_dinov2_folder,
)
from ss4d.models.official_variants import StructureFlow4DInsertTemporal, StructureFlow4DInsertTemporalConfig
from ss4d.models.slat_flow import SLatFlow4D, SLatFlow4DConfig
from ss4d.models.slat_vae import (
    GaussianDecoder4D,
    GaussianDecoder4DConfig,
    SLatEncoder4D,
    SLatEncoder4DConfig,
    hammersley_offsets,
)
from ss4d.models.structure_flow import StructureFlow4D, StructureFlow4DConfig
from ss4d.models.structure_vae import (
    SparseStructureDecoder,
    SparseStructureEncoder,
    SparseStructureVAE,
    SparseStructureVAEConfig,
    occupancy_to_coords,
)

__all__ = [
    "DINOV2_HUB_IDS",
    "ConditionEncoder",
    "DinoV2Encoder",
    "TinyImageEncoder",
    "TinyImageEncoderConfig",
    "GaussianDecoder4D",
    "GaussianDecoder4DConfig",
    "LoadReport",
    "ModelConfig",
    "ModelMixin",
    "SLatEncoder4D",
    "SLatEncoder4DConfig",
    "SLatFlow4D",
    "SLatFlow4DConfig",
    "SparseStructureDecoder",
    "SparseStructureEncoder",
    "SparseStructureVAE",
    "SparseStructureVAEConfig",
    "StructureFlow4D",
    "StructureFlow4DConfig",
    "StructureFlow4DInsertTemporal",
    "StructureFlow4DInsertTemporalConfig",
    "check_dinov2_folder",
    "hammersley_offsets",
    "occupancy_to_coords",
]
