"""Lazy import of optional dependencies, with an install hint when they are missing."""

import importlib
from types import ModuleType

from ss4d.errors import BackendUnavailableError

__all__ = ["is_importable", "require"]


def is_importable(module: str) -> bool:
    """True when ``module`` imports without error (the import is cached by Python afterwards)."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken optional install counts as unavailable
        return False
    return True


def require(module: str, *, hint: str) -> ModuleType:
    """Import ``module`` or raise :class:`BackendUnavailableError` carrying ``hint`` (how to install it)."""
    try:
        return importlib.import_module(module)
    except Exception as e:  # noqa: BLE001
        raise BackendUnavailableError(f"`{module}` cannot be imported ({type(e).__name__}: {e}). {hint}") from e
