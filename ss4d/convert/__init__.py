"""Weights from elsewhere: official SS4D checkpoints and TRELLIS image-large checkpoints -> ss4d models."""

from ss4d.convert.official import (
    ConversionResult,
    config_from_official,
    convert_checkpoint,
    convert_official,
    convert_trellis,
    state_from_official,
)

__all__ = [
    "ConversionResult",
    "config_from_official",
    "convert_checkpoint",
    "convert_official",
    "convert_trellis",
    "state_from_official",
]
