"""Weights from elsewhere: official SS4D checkpoints and release folders, TRELLIS image-large checkpoints."""

from ss4d.convert.official import (
    OFFICIAL_CLASSES,
    TRELLIS_CLASSES,
    ConversionResult,
    config_from_official,
    convert_checkpoint,
    convert_official,
    convert_trellis,
    state_from_official,
)
from ss4d.convert.release import OfficialRelease, check_release, is_official_release, load_release, read_release

__all__ = [
    "OFFICIAL_CLASSES",
    "TRELLIS_CLASSES",
    "ConversionResult",
    "OfficialRelease",
    "check_release",
    "config_from_official",
    "convert_checkpoint",
    "convert_official",
    "convert_trellis",
    "is_official_release",
    "load_release",
    "read_release",
    "state_from_official",
]
