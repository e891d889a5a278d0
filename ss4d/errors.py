"""Exceptions raised by ss4d. Every one says what was wrong, what was expected and how to fix it."""

__all__ = [
    "BackendUnavailableError",
    "CheckpointMismatchError",
    "CoordinateError",
    "FrameCountError",
    "MappingMismatchError",
    "ModelNotCachedError",
    "ReleaseFormatError",
    "UnknownBackendError",
    "UnsafeModelError",
]


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run here (not installed, or not on this device)."""


class UnknownBackendError(ValueError):
    """A backend name that no registry knows."""


class CoordinateError(ValueError):
    """Sparse coordinates that break the SparseTensor contract (duplicates, negatives, out of range)."""


class FrameCountError(ValueError):
    """A frame count an operation cannot handle (e.g. odd T for temporal packing)."""


class MappingMismatchError(ValueError):
    """An up-sampling / inverse-conv map applied to a tensor whose coordinates it was not built for."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not match the model (lists missing / unexpected / mismatched)."""


class ReleaseFormatError(ValueError):
    """An official SS4D release folder that ss4d cannot read (missing file, unknown model, bad JSON, shapes)."""


class UnsafeModelError(ValueError):
    """A model folder that would need code execution to load (``auto_map``, foreign ``model_type``, pickle)."""


class ModelNotCachedError(FileNotFoundError):
    """A hub id asked for offline (``HF_HUB_OFFLINE=1`` / ``local_files_only``) with its files not cached."""
