"""Exceptions raised by ss4d. Every one says what was wrong, what was expected and how to fix it.

Every class derives from :class:`SS4DError`: the command line turns exactly these (plus missing files) into
exit code 2 with a one-line message; anything else is a bug in ss4d (exit 1). Each also derives from the
built-in it refines (``ValueError``, ``FileExistsError``, ...), so ``except ValueError`` keeps working.
"""

__all__ = [
    "BackendUnavailableError",
    "CheckpointError",
    "CheckpointMismatchError",
    "ConfigError",
    "CoordinateError",
    "DeviceError",
    "FrameCountError",
    "InputError",
    "MappingMismatchError",
    "MediaError",
    "ModelNotCachedError",
    "NonFiniteError",
    "OutputExistsError",
    "OutputLockedError",
    "OutputPathError",
    "ReleaseFormatError",
    "SS4DError",
    "UnknownBackendError",
    "UnsafeModelError",
]


class SS4DError(Exception):
    """Base of every ss4d error: a user mistake or a bad file, never a bug (CLI exit code 2)."""


class BackendUnavailableError(SS4DError, RuntimeError):
    """A backend was asked for by name but cannot run here (not installed, or not on this device)."""


class UnknownBackendError(SS4DError, ValueError):
    """A backend name that no registry knows."""


class CoordinateError(SS4DError, ValueError):
    """Sparse coordinates that break the SparseTensor contract (duplicates, negatives, out of range)."""


class FrameCountError(SS4DError, ValueError):
    """A frame count an operation cannot handle (e.g. odd T for temporal packing)."""


class MappingMismatchError(SS4DError, ValueError):
    """An up-sampling / inverse-conv map applied to a tensor whose coordinates it was not built for."""


class CheckpointError(SS4DError, ValueError):
    """A checkpoint or pipeline folder that cannot be loaded safely (corrupt, truncated, unsafe, inconsistent)."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint whose keys or shapes do not match the model (lists missing / unexpected / mismatched)."""


class ReleaseFormatError(CheckpointError):
    """An official SS4D release folder that ss4d cannot read (missing file, unknown model, bad JSON, shapes)."""


class UnsafeModelError(CheckpointError):
    """A model folder that would need code execution to load (``auto_map``, foreign ``model_type``, pickle)."""


class ModelNotCachedError(SS4DError, FileNotFoundError):
    """A hub id asked for offline (``HF_HUB_OFFLINE=1`` / ``local_files_only``) with its files not cached."""


class ConfigError(SS4DError, ValueError):
    """A configuration (training config, JSON settings) that cannot run; the message names the key."""


class InputError(SS4DError, ValueError):
    """A bad argument or option value (out of range, not finite, wrong type)."""


class MediaError(InputError):
    """A clip, image or Gaussian file that cannot be decoded or whose frames are inconsistent."""


class DeviceError(InputError):
    """A device string that is malformed or names a device this machine does not have."""


class NonFiniteError(SS4DError, ValueError):
    """NaN or infinity in an input, a statistic, a weight or a stage's output."""


class OutputPathError(SS4DError, OSError):
    """An output path that cannot be written (a file where a folder is needed, read-only, ...)."""


class OutputExistsError(SS4DError, FileExistsError):
    """An output folder or file exists and would be replaced without ``overwrite=True`` / ``--overwrite``."""


class OutputLockedError(SS4DError, OSError):
    """Another process is writing the same output (its lock file is held)."""
