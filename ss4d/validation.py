"""Checks of every command-line surface, run before any heavy work (one function per command).

Each ``check_<command>(args)`` validates the parsed options of ``ss4d <command>``: numbers finite and in range,
the device valid and present, inputs present (and, where cheap, decodable), outputs writable and not replacing
anything without ``--overwrite``. A failure raises an :mod:`ss4d.errors` type whose one-line message names
the option or file, what was expected, and the fix; the CLI turns it into exit code 2.
"""

import argparse
import math
from pathlib import Path

from ss4d.errors import InputError
from ss4d.utils.atomic import check_output
from ss4d.utils.device import check_device

__all__ = ["check_convert", "check_eval", "check_generate", "check_import", "check_render", "check_synth",
           "check_train", "int_in", "number_in"]  # fmt: skip

MAX_STEPS = 10_000
MAX_SEED = 2**63 - 1


def int_in(option: str, value: int | None, lo: int, hi: int) -> None:
    """``value`` (when given) must be an integer in ``lo..hi``."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi):
        raise InputError(f"{option} must be an integer in {lo}..{hi}, got {value!r}")


def number_in(option: str, value: float | None, lo: float, hi: float, *, open_lo: bool = False) -> None:
    """``value`` (when given) must be a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``open_lo``)."""
    if value is None:
        return
    ok = math.isfinite(value) and (value > lo if open_lo else value >= lo) and value <= hi
    if not ok:
        raise InputError(f"{option} must be a finite number in {'(' if open_lo else '['}{lo}, {hi}], got {value}")


def _existing(option: str, path: str | Path, *, folder: bool | None = None) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{option} {p}: no such {'folder' if folder else 'file or folder'}")
    if folder is True and not p.is_dir():
        raise InputError(f"{option} {p}: expected a folder, got a file")
    if folder is False and not p.is_file():
        raise InputError(f"{option} {p}: expected a file, got a folder")
    return p


def check_generate(args: argparse.Namespace) -> None:
    int_in("--steps", args.steps, 1, MAX_STEPS)
    number_in("--cfg", args.cfg, 0.0, 100.0)
    number_in("--slat-cfg", args.slat_cfg, 0.0, 100.0)
    int_in("--seed", args.seed, 0, MAX_SEED)
    int_in("--stride", args.stride, 1, 10_000)
    from ss4d.data.video import MAX_FRAMES_LIMIT

    int_in("--max-frames", args.max_frames, 1, MAX_FRAMES_LIMIT)
    check_device(args.device)
    _existing("input", args.input)
    check_output(args.output, overwrite=args.overwrite)


def check_render(args: argparse.Namespace) -> None:
    int_in("--size", args.size, 8, 4096)
    number_in("--fps", args.fps, 0.0, 240.0, open_lo=True)
    number_in("--sweep", args.sweep, -3600.0, 3600.0)
    _existing("sequence", args.sequence)
    if Path(args.output).suffix.lower() not in (".mp4", ".gif"):
        raise InputError(f"-o {args.output}: expected a .mp4 or .gif path")
    check_output(args.output, overwrite=args.overwrite, kind="file")


def check_convert(args: argparse.Namespace) -> None:
    _existing("checkpoint", args.checkpoint)  # a checkpoint JSON or a whole official release folder
    check_output(args.output, overwrite=args.overwrite)


def _check_voxel_feature_args(args: argparse.Namespace) -> None:
    int_in("--resolution", args.resolution, 4, 256)
    if args.features == "dinov2" and not args.dinov2:
        raise InputError("--features dinov2 needs --dinov2 DIR (a local DINOv2 weights folder)")
    if args.dinov2:
        _existing("--dinov2", args.dinov2, folder=True)


def check_synth(args: argparse.Namespace) -> None:
    int_in("--num", args.num, 1, 1_000_000)
    int_in("--frames", args.frames, 1, 4096)
    int_in("--seed", args.seed, 0, 2**31 - 1)
    int_in("--size", args.size, 8, 2048)
    int_in("--views", args.views, 1, 256)
    _check_voxel_feature_args(args)
    check_output(args.out, overwrite=True)  # writable, not a file (clips are added to the folder)


def check_import(args: argparse.Namespace) -> None:
    int_in("--size", args.size, 8, 4096)
    _check_voxel_feature_args(args)
    check_output(args.out, overwrite=True)
    from ss4d.data.rendered import check_rendered_source

    for src in args.sources:  # every source, before the first clip is written
        check_rendered_source(src)


def check_train(args: argparse.Namespace) -> None:
    _existing("config", args.config, folder=False)
    for option, value in (("--data", args.data), ("--out", args.out)):
        if value is not None and not value:
            raise InputError(f"{option} must be a folder path, got an empty string")


def check_eval(args: argparse.Namespace) -> None:
    int_in("--limit", args.limit, 1, 1_000_000)
    int_in("--steps", args.steps, 1, MAX_STEPS)
    int_in("--seed", args.seed, 0, MAX_SEED)
    model = _existing("--model", args.model, folder=True)
    if not (model / "model_index.json").is_file():
        raise FileNotFoundError(f"--model {model}: no model_index.json; pass an ss4d pipeline folder")
    _existing("--data", args.data, folder=True)
    if args.out is not None:
        check_output(args.out, overwrite=args.overwrite, kind="file")
