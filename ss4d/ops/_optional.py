"""Lazy import of optional dependencies, with an install hint when they are missing, and the availability
mixins of backends (:class:`CudaPackage`: CUDA plus an optional package; :class:`AnyDevice`: runs everywhere)."""

import importlib
from types import ModuleType

import torch

from ss4d.errors import BackendUnavailableError

__all__ = ["AnyDevice", "CudaPackage", "is_importable", "require"]


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


class CudaPackage:
    """Availability of a backend that runs on CUDA only and needs the optional package ``module``.

    Mixed into backend classes (which set ``name`` and ``module``); gives the registry's ``is_available`` and
    ``unavailable_reason``.
    """

    name: str
    module: str

    def is_available(self, device: torch.device) -> bool:
        return device.type == "cuda" and is_importable(self.module)

    def unavailable_reason(self, device: torch.device) -> str:
        if device.type != "cuda":
            return f"ss4d runs {self.name} on CUDA only, not {device.type}."
        return "" if is_importable(self.module) else f"{self.name} is not installed."


class AnyDevice:
    """Availability of a backend that needs nothing optional and runs on every device (a reference or fallback).

    Mixed into backend classes before their base, like :class:`CudaPackage`.
    """

    def is_available(self, device: torch.device) -> bool:
        return True

    def unavailable_reason(self, device: torch.device) -> str:
        return ""
