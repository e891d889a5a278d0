"""Frozen config dataclasses read back from JSON: one reading for the model and the scheduler configs."""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

__all__ = ["config_kwargs"]

IGNORED_KEYS = frozenset({"_class_name", "_ss4d_version"})  # written beside the fields by save_pretrained


def config_kwargs(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the dataclass ``cls`` stored in the JSON object ``d``.

    JSON lists become tuples, and integers become floats in float fields (JSON writes 4.0 as 4).

    Raises:
        ValueError: ``d`` has keys that are not fields of ``cls`` (``_class_name`` / ``_ss4d_version`` are
            ignored); the message names them and the known ones.
    """
    names = {f.name for f in fields(cls)}
    extra = set(d) - names - IGNORED_KEYS
    if extra:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(extra)}; known: {sorted(names)}")
    values = {k: v for k, v in d.items() if k in names}
    for f in fields(cls):
        v = values.get(f.name)
        if isinstance(v, list):
            values[f.name] = tuple(v)
        elif isinstance(v, int) and not isinstance(v, bool) and "float" in str(f.type) and "int" not in str(f.type):
            values[f.name] = float(v)
    return values
