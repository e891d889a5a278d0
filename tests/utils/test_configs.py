"""Config dataclasses from JSON objects (models and schedulers read their configs through one function)."""

from dataclasses import dataclass

import pytest

from ss4d.utils.configs import config_kwargs


@dataclass(frozen=True, kw_only=True)
class _Config:
    width: int = 8
    ratio: float = 4.0
    scale: float | None = None
    sizes: tuple[int, ...] = (1, 2)
    flag: bool = False


def test_json_values_become_the_field_types():
    d = {"_class_name": "X", "_ss4d_version": "0", "width": 3, "ratio": 2, "scale": 5, "sizes": [4, 5], "flag": True}
    kw = config_kwargs(_Config, d)
    assert kw == {"width": 3, "ratio": 2.0, "scale": 5.0, "sizes": (4, 5), "flag": True}
    assert type(kw["width"]) is int and type(kw["ratio"]) is float and type(kw["scale"]) is float
    assert config_kwargs(_Config, {"ratio": True}) == {"ratio": True}  # a bool stays a bool (the config refuses it)


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match=r"_Config: unknown config keys \['depth'\]; known: .*'width'"):
        config_kwargs(_Config, {"width": 2, "depth": 3})
