"""Checks of a pipeline folder before anything in it is loaded (it may come from anywhere).

:func:`read_index` reads ``model_index.json`` and refuses, with the key named: invalid JSON or wrong types,
a missing component, a class not on the allowlist, a component folder that is missing or that leaves the
pipeline folder once symlinks are resolved, and latent statistics / sampler settings that are not finite
numbers of the right count and range.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ss4d.errors import CheckpointError
from ss4d.utils.untrusted import confined, read_json_object

__all__ = ["PipelineIndex", "check_sampler_settings", "read_index"]


@dataclass
class PipelineIndex:
    path: Path  # model_index.json
    raw: dict[str, Any]
    components: dict[str, tuple[str, Path]]  # name -> (class name, resolved folder)


def _numbers(where: str, value: Any, *, positive: bool = False) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise CheckpointError(f"{where}: expected a list of numbers, got {value!r:.80}")
    bad = [v for v in value if not math.isfinite(v) or (positive and v <= 0)]
    if bad:
        need = "finite and > 0" if positive else "finite"
        raise CheckpointError(f"{where}: every value must be {need}, got {bad[:4]}; the folder is corrupt, re-save it")
    return [float(v) for v in value]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_sampler_settings(d: dict, *, error: type[Exception], label: Callable[[str], str]) -> None:
    """Validate a sampler dict of the older format (``num_steps``, ``cfg_strength``, ``cfg_interval``,
    ``rescale_t``: a ``model_index.json``'s or a training config's); a bad value raises ``error`` with the
    message ``"{label(key)}: expected ..."``."""
    steps = d.get("num_steps", 1)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise error(f"{label('num_steps')}: expected an integer >= 1, got {steps!r}")
    for key in ("cfg_strength", "rescale_t"):
        v = d.get(key, 1.0)
        if not _is_number(v) or v < 0:
            raise error(f"{label(key)}: expected a finite number >= 0, got {v!r}")
    iv = d.get("cfg_interval", [0.0, 1.0])
    if not (isinstance(iv, list) and len(iv) == 2 and all(map(_is_number, iv)) and 0 <= iv[0] <= iv[1] <= 1):
        raise error(f"{label('cfg_interval')}: expected [lo, hi] with 0 <= lo <= hi <= 1, got {iv!r}")


def _check_sampler(where: str, d: Any) -> None:
    if d is None:
        return
    if not isinstance(d, dict):
        raise CheckpointError(f"{where}: expected an object, got {type(d).__name__}")
    check_sampler_settings(d, error=CheckpointError, label=lambda key: f"{where}.{key}")


def read_index(
    folder: Path, components: tuple[str, ...], allowed: set[str], optional: tuple[str, ...] = ()
) -> PipelineIndex:
    """Validate ``folder/model_index.json`` (see the module docstring); ``allowed`` is the class allowlist;
    the ``optional`` components may be absent (older folders)."""
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} not found: not an ss4d pipeline folder")
    index = read_json_object(index_path)
    if not isinstance(index.get("components", {}), dict):
        raise CheckpointError(f"{index_path}: `components`: expected an object {{component: class name}}")
    comps = index.get("components", {})
    missing = [c for c in components if c not in comps and c not in optional]
    if missing:
        raise CheckpointError(f"{index_path}: missing components {missing}")
    found = {}
    for name in (c for c in components if c in comps):
        class_name = comps[name]
        if not isinstance(class_name, str) or class_name not in allowed:
            raise CheckpointError(
                f"{index_path}: component {name!r} names class {class_name!r}, which is not on ss4d's allowlist "
                f"{sorted(allowed)}"
            )
        sub = folder / name
        if not sub.is_dir():
            raise FileNotFoundError(f"{sub}: component folder missing")
        try:
            resolved = confined(name, folder, what=f"{index_path}: component {name!r}")
            for f in sub.iterdir():  # each file too: a symlinked model.safetensors may point anywhere
                confined(Path(name) / f.name, folder, what=f"{index_path}: component {name!r} file {f.name}")
        except ValueError as e:
            raise CheckpointError(str(e)) from e
        found[name] = (class_name, resolved)
    norm = index.get("slat_normalization", {})
    if not isinstance(norm, dict):
        raise CheckpointError(f"{index_path}: slat_normalization: expected an object with `mean` and `std`")
    for key in ("mean", "std"):
        if key in norm:
            _numbers(f"{index_path}: slat_normalization.{key}", norm[key], positive=key == "std")
    for key in ("structure_sampler", "slat_sampler"):
        _check_sampler(f"{index_path}: {key}", index.get(key))
    sigma = index.get("sigma_min", 1e-5)
    if not isinstance(sigma, (int, float)) or not 0 <= sigma < 1:
        raise CheckpointError(f"{index_path}: sigma_min: expected a number in [0, 1), got {sigma!r}")
    frames = index.get("trained_frames", 1)
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise CheckpointError(f"{index_path}: trained_frames: expected an integer >= 1, got {frames!r}")
    return PipelineIndex(index_path, index, found)
