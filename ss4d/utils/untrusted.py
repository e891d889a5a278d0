"""Reading files that may be hostile or damaged: bounded headers, confined paths, finite values.

* :func:`check_safetensors` reads only the 8-byte length and the JSON header of a ``.safetensors`` file and
  checks them against the file's size (header length, every tensor's byte range and dtype/shape agreement)
  before anything is allocated; :func:`load_safetensors` then loads it.
* :func:`confined` resolves a path (symlinks included) and refuses it when it leaves its folder.
* :func:`check_finite` refuses NaN / infinity in tensors or numbers, naming where they were found.

This module imports nothing from ss4d but :mod:`ss4d.errors`.
"""

import json
import math
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

from ss4d.errors import CheckpointError, InputError, NonFiniteError

__all__ = ["MAX_HEADER_BYTES", "check_finite", "check_safetensors", "confined", "load_safetensors", "read_json_object"]

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}  # fmt: skip


def read_json_object(path: str | Path, *, error: type[Exception] = CheckpointError, fix: str = "") -> dict:
    """The JSON object in ``path``; invalid JSON or another JSON type raises ``error`` naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: not valid JSON ({e}){'; ' + fix if fix else ''}") from e
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}{'; ' + fix if fix else ''}")
    return data


def check_safetensors(path: str | Path) -> dict:
    """Validate a safetensors file's header against its size; returns the header (without ``__metadata__``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: truncated, oversized or inconsistent header, or tensors outside the file.
    """
    path = Path(path)
    size = path.stat().st_size
    fix = "the file is damaged or not a safetensors file; re-download or re-save it"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: {size} bytes, too short for a safetensors header; {fix}")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise CheckpointError(f"{path}: header claims {n} bytes but the file has {size}; {fix}")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: header is not JSON ({e}); {fix}") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header is not a JSON object; {fix}")
    header.pop("__metadata__", None)
    data_size = size - 8 - n
    for name, info in header.items():
        try:
            dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (dtype in _DTYPE_BYTES and all(isinstance(d, int) and d >= 0 for d in shape)
                  and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_size
                  and end - start == math.prod(shape) * _DTYPE_BYTES[dtype])  # fmt: skip
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{path}: tensor {name!r} has an invalid entry or lies outside the file; {fix}")
    return header


def load_safetensors(path: str | Path, *, finite: bool = True) -> dict:
    """:func:`check_safetensors`, then load every tensor (CPU); with ``finite`` refuse NaN / inf values."""
    from safetensors.torch import load_file

    check_safetensors(path)
    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - the Rust loader's own errors: a damaged file
        raise CheckpointError(f"{path}: cannot be read ({type(e).__name__}: {e}); re-download or re-save it") from e
    if finite:
        check_finite(state, f"{path}", fix="the weights are corrupt (or diverged in training); use another checkpoint")
    return state


def check_finite(values, where: str, *, fix: str) -> None:
    """Raise :class:`NonFiniteError` when ``values`` (a tensor, a mapping of tensors, or numbers) hold NaN / inf."""
    import torch

    if isinstance(values, Mapping):
        items: Iterable = values.items()
    elif isinstance(values, torch.Tensor):
        items = [("", values)]
    else:  # a number or a sequence of numbers
        items = [("", torch.as_tensor(values, dtype=torch.float64, device="cpu"))]  # not the default device
    for name, v in items:
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            label = f"{where}: {name}" if name else where
            raise NonFiniteError(f"{label} holds {bad} NaN/inf value(s) of {v.numel()}; {fix}")


def confined(path: str | Path, root: str | Path, *, what: str, resolve: bool = True) -> Path:
    """``path`` (relative paths are taken from ``root``) must lie inside ``root``; returns it.

    With ``resolve`` symlinks are followed first (a pipeline folder's files must really be inside it); without,
    the check is lexical (no absolute path, no ``..`` leading out), so a folder may link to data elsewhere.

    Raises:
        InputError: the path leaves ``root`` (``what`` names the setting it came from).
    """
    p = Path(path)
    if resolve:
        root = Path(root).resolve()
        full = (p if p.is_absolute() else root / p).resolve()
    else:
        root = Path(os.path.normpath(Path(root).absolute()))
        full = Path(os.path.normpath(p if p.is_absolute() else root / p))
    if full != root and root not in full.parents:
        raise InputError(f"{what}: {str(path)!r} leads to {full}, outside {root}; paths must stay inside the "
                         "folder (no '..' or absolute paths" + (", no symlinks leading out)" if resolve else ")"))
    return full
