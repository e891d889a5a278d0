"""The mode vocabularies of ss4d as ``Literal`` aliases, and the one function that checks them.

Every place that takes a mode string (blocks, layers, model configs, ops) annotates it with an alias
from here and validates it with :func:`check_choice`, so the accepted values and the error message are
defined once.
"""

from typing import Any, Literal, TypeVar, get_args

__all__ = ["Pooling", "TemporalLayerMode", "TemporalMode", "WindowedTemporalMode", "check_choice"]

TemporalMode = Literal["expand", "insert", "none"]
"""How time enters a transformer block: the self-attention spans frames (``"expand"``, the released
SS4D), per-frame self-attention plus an inserted temporal layer (``"insert"``), or per frame (``"none"``)."""

WindowedTemporalMode = Literal["expand", "none"]
"""The modes of the 4D VAE's windowed blocks (4D windows, or 3D windows per frame)."""

TemporalLayerMode = Literal["expand", "insert"]
"""How a temporal layer sits in its block: it *is* the self-attention, or an extra zero-initialised layer."""

Pooling = Literal["mean", "official"]
"""Down-sampling reduction: the true mean, or the official ``sum / (n + 1)``."""

S = TypeVar("S")


def check_choice(value: S, choices: Any, name: str) -> S:
    """Return ``value`` when it is one of the ``Literal`` alias ``choices``; else raise ``ValueError``
    naming ``name``, the value and the accepted ones."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value
