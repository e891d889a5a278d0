"""The ``ss4d`` command line: ``generate``, ``view``, ``export-mesh``, ``export-splats``, ``render``, ``convert``,
``data``, ``train``, ``eval``, ``info``.

Errors print one line (``error: ...``) plus a hint. Exit codes: 0 success; 2 a user mistake or a bad file
(every :class:`ss4d.errors.SS4DError`, missing files, usage errors), found before any heavy work by
:mod:`ss4d.validation`; 1 a bug in ss4d; 130 interrupted (Ctrl-C; nothing half-written is left behind).
Warnings print as one line (``warning: ...``).
"""

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import torch

from ss4d import __version__, validation
from ss4d.errors import ConfigError, InputError, MediaError, SS4DError

BAD_INPUT = (SS4DError, FileNotFoundError, NotADirectoryError, PermissionError)


THREADS_HELP = "torch CPU threads (default: OMP_NUM_THREADS, else the idle cores: usable cores - load, at least 1)"


def _generate(args: argparse.Namespace) -> int:
    from ss4d.data import load_clip
    from ss4d.pipelines import SS4DPipeline
    from ss4d.pipelines.presets import shipped_tiny_path

    validation.check_generate(args)
    if args.scheduler is not None:
        _check_scheduler_name(args.scheduler)
    model = args.model if args.model is not None else shipped_tiny_path()
    out = Path(args.output)
    start = time.perf_counter()
    _set_threads(args)
    clip = load_clip(args.input, max_frames=args.max_frames, stride=args.stride)  # decodable, before the model
    pipe = SS4DPipeline.from_pretrained(model, device=args.device, condition_encoder=args.condition_encoder)
    if args.scheduler is not None:
        _swap_schedulers(pipe, args.scheduler)
    result = pipe(
        clip,
        seed=args.seed,
        num_inference_steps=args.steps,
        guidance_scale=args.cfg,
        slat_guidance_scale=args.slat_cfg,
        progress=not args.quiet,
    )
    written = result.save(out, preview=not args.no_preview, overwrite=args.overwrite,
                          extras=_generate_extras(args, result, clip.fps or 8.0))  # fmt: skip
    if not args.quiet:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        print(f"{result.num_frames} frames -> {out} ({len(written['ply'])} PLYs"
              f"{', ' + Path(written['preview']).name if 'preview' in written else ''}); {stages}; "
              f"total {time.perf_counter() - start:.1f}s")  # fmt: skip
    if "extras" in written and not args.quiet:
        print(_extras_summary(written["extras"], out))
    return 0


def _check_scheduler_name(name: str) -> None:
    from ss4d.schedulers import SCHEDULERS

    if name not in SCHEDULERS:
        raise InputError(f"--scheduler {name}: not a registered scheduler; known: {', '.join(sorted(SCHEDULERS))}")


def _swap_schedulers(pipe, name: str) -> None:
    """``--scheduler NAME``: both stages use the registered scheduler NAME with their current settings."""
    from ss4d.schedulers import SCHEDULERS

    _check_scheduler_name(name)
    for stage in ("structure", "slat"):
        current = getattr(pipe, f"{stage}_scheduler")
        setattr(pipe, f"{stage}_scheduler", SCHEDULERS[name].from_config(current.config))


def _generate_extras(args: argparse.Namespace, result, fps: float) -> Callable[[Path], list[Path]] | None:
    """`generate --viewer / --mesh / --splats`: a writer of structure.npz, viewer.html, meshes and compressed
    splats into the output's transaction (:meth:`SS4DOutput.save` ``extras``), or None when none is asked for."""
    from ss4d.export import export_folder, save_structure

    if not (args.viewer or args.mesh or args.splats):
        return None

    def write(folder: Path) -> list[Path]:
        save_structure(folder / "structure.npz", result.coords, result.resolution, result.images, fps)
        return [folder / "structure.npz", *export_folder(folder, viewer=args.viewer, mesh=args.mesh,
                                                         splat_formats=args.splats, mesh_level=args.mesh_level,
                                                         fps=fps)]  # fmt: skip

    return write


def _extras_summary(paths: list[str], out: Path) -> str:
    groups: dict[str, int] = {}  # "mesh/frame_*.glb" -> 16
    for path in map(Path, paths):
        name = f"frame_*{''.join(path.suffixes)}" if path.name.startswith("frame_") else path.name
        key = name if path.parent == out else f"{path.parent.name}/{name}"
        groups[key] = groups.get(key, 0) + 1
    return "also wrote " + ", ".join(f"{k} ({n})" if n > 1 else k for k, n in groups.items())


def _render(args: argparse.Namespace) -> int:
    from ss4d.data import write_video
    from ss4d.render import render_gaussians
    from ss4d.render.preview import orbit_camera
    from ss4d.representations import load_npz, load_ply

    validation.check_render(args)
    src = Path(args.sequence)
    if src.is_dir():
        plys = sorted(src.glob("*.ply"))
        if not plys:
            raise MediaError(f"{src}: no .ply files; pass a folder written by `ss4d generate` or a gaussians.npz")
        frames = [load_ply(p) for p in plys]
    else:
        frames = load_npz(src)
    images = []
    with torch.no_grad():
        for t, g in enumerate(frames):
            cam = orbit_camera(t, len(frames), size=args.size, sweep=args.sweep)
            images.append(render_gaussians(g, cam, background=torch.ones(3)).color.permute(2, 0, 1))
    from ss4d.ops._optional import is_importable
    from ss4d.utils.atomic import atomic_file

    video, out = torch.stack(images), Path(args.output)
    if out.suffix.lower() == ".mp4" and not is_importable("av"):
        out = out.with_suffix(".gif")  # what write_video falls back to without PyAV
    path = atomic_file(out, lambda p: write_video(video, p, fps=args.fps), overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def _view(args: argparse.Namespace) -> int:
    from ss4d.viewer import viewer_from_folder

    path = viewer_from_folder(args.folder, output=args.output, fps=args.fps, max_gaussians=args.max_gaussians)
    print(f"wrote {path} (open it in a browser; it needs no network)")
    return 0


def _export_mesh(args: argparse.Namespace) -> int:
    from ss4d.export import load_result_gaussians, load_structure, save_mesh_sequence
    from ss4d.export.mesh import ANIMATED_NAME

    frames = load_result_gaussians(args.folder)
    out = Path(args.output) if args.output else Path(args.folder) / "mesh"
    fps = None
    if args.animated:
        structure = Path(args.folder) / "structure.npz"
        fps = args.fps or (load_structure(structure).fps if structure.is_file() else 8.0)
    stats = save_mesh_sequence(frames, out, resolution=args.resolution, level=args.level, smooth=args.smooth,
                               animated_fps=fps)  # fmt: skip
    for s in stats:
        print(f"{s.path}: {s.triangles} triangles, {s.vertices} vertices, {s.seconds:.2f}s")
    if fps is not None:
        print(f"{out / ANIMATED_NAME}: all {len(stats)} frames at {fps:g} fps")
    return 0


def _export_splats(args: argparse.Namespace) -> int:
    from ss4d.export import load_result_gaussians, save_splat_sequence

    frames = load_result_gaussians(args.folder)
    paths = save_splat_sequence(frames, Path(args.output) if args.output else Path(args.folder) / "splats", args.format)
    print(f"wrote {len(paths)} files to {paths[0].parent if paths else args.output}")
    return 0


def _splat_formats(text: str) -> list[str]:
    """`--splats`/`--format` values: comma-separated keys of ss4d.export.SPLAT_FORMATS, or `none`."""
    from ss4d.export.splats import SPLAT_FORMATS

    names = [] if text == "none" else [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in SPLAT_FORMATS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown format(s) {bad}; choose from {sorted(SPLAT_FORMATS)} or none")
    return names


def _convert(args: argparse.Namespace) -> int:
    from ss4d.convert import convert_checkpoint

    validation.check_convert(args)
    if Path(args.checkpoint).is_dir():  # a whole official release folder -> an ss4d pipeline folder
        from ss4d.pipelines import SS4DPipeline

        pipe = SS4DPipeline.from_pretrained(args.checkpoint, condition_encoder=args.condition_encoder)
        pipe.save_pretrained(args.output, overwrite=args.overwrite)
        print(f"official release {args.checkpoint} -> ss4d pipeline {args.output}")
        return 0
    result = convert_checkpoint(args.checkpoint, args.output, trellis=args.trellis, overwrite=args.overwrite)
    extra = f"; {len(result.new_keys)} new keys ({', '.join(result.notes)})" if result.new_keys else ""
    print(
        f"{type(result.model).__name__}: {result.model.num_parameters() / 1e6:.1f} M parameters -> {args.output}{extra}"
    )
    return 0


def _write_clips(args: argparse.Namespace, items: Iterable, build: Callable, describe: Callable, *,
                 first: int = 0) -> int:  # fmt: skip
    """`ss4d data synth` / `data import`: clip ``i`` is ``build(items[i], features=...)`` (the ``--features``
    extractor), saved as ``--out/clip_{first + i:06d}``; unless ``--quiet``, prints
    ``describe(i, item, clip, folder)``."""
    from ss4d.models.features import feature_extractor

    features = feature_extractor(args.features, dinov2=args.dinov2)
    out = Path(args.out)
    for i, item in enumerate(items):
        clip = build(item, features=features)
        folder = clip.save(out / f"clip_{first + i:06d}")
        if not args.quiet:
            print(describe(i, item, clip, folder))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from ss4d.data.synthetic import make_clip

    validation.check_synth(args)
    build = partial(make_clip, num_frames=args.frames, resolution=args.resolution, image_size=args.size,
                    num_views=args.views, aggregate=args.aggregate, world=args.world)  # fmt: skip

    def describe(i: int, seed: int, clip, folder: Path) -> str:
        return f"clip {i + 1}/{args.num}: seed {seed}, {clip.coords.shape[0]} voxels, {clip.meta['motions']}"

    return _write_clips(args, range(args.seed, args.seed + args.num), build, describe, first=args.seed)


def _import(args: argparse.Namespace) -> int:
    from ss4d.data.rendered import load_rendered_clip

    validation.check_import(args)
    build = partial(load_rendered_clip, resolution=args.resolution, image_size=args.size, aggregate=args.aggregate)

    def describe(i: int, src: str, clip, folder: Path) -> str:
        return f"{src} -> {folder}: {clip.meta['num_frames']} frames, {clip.coords.shape[0]} voxels"

    return _write_clips(args, args.sources, build, describe)


def _train(args: argparse.Namespace) -> int:
    from ss4d.training.config import validate_config
    from ss4d.training.run import run_training
    from ss4d.utils.atomic import check_output
    from ss4d.utils.untrusted import read_json_object

    validation.check_train(args)
    path = Path(args.config)
    config = read_json_object(path, error=ConfigError, fix="see configs/ for examples")
    for key in ("data", "out"):
        if getattr(args, key):
            config[key] = getattr(args, key)
    try:
        validate_config(config, check_paths=True)  # the whole config, every stage, before the first one
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
    if not Path(config["data"]).is_dir():
        raise FileNotFoundError(f"{path}: data {config['data']}: no such folder (make clips with `ss4d data synth`)")
    check_output(config["out"], overwrite=True)  # a writable folder (training resumes inside it)
    folder = run_training(config, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # once under torchrun
        print(f"pipeline written to {folder}")
    return 0


def _set_threads(args: argparse.Namespace) -> None:
    from ss4d.threads import set_threads

    set_threads(args.threads)


def _eval(args: argparse.Namespace) -> int:
    from ss4d.eval.evaluate import evaluate_folder, format_table

    validation.check_eval(args)
    _set_threads(args)
    r = evaluate_folder(args.model, args.data, limit=args.limit, seed=args.seed, num_steps=args.steps, out=args.out,
                        lpips_vgg=args.lpips_vgg, lpips_linear=args.lpips_linear, slat_encoder=args.slat_encoder,
                        structure_encoder=args.structure_encoder, stages=args.stages,
                        overwrite=args.overwrite)  # fmt: skip
    print(f"{r['clips']} clips (means; baselines and ceilings on the same views):")
    print(format_table(r))
    for key in ("lpips_missing", "slat_vae_oracle_missing", "iou_missing"):
        if key in r:
            print(f"{key.replace('_', ' ')}: {r[key]}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ss4d.ops.attention import attention_backends
    from ss4d.ops.sparse import sparse_conv_backends

    devices = ["cpu"] + ([f"cuda ({torch.cuda.get_device_name(0)})"] if torch.cuda.is_available() else [])
    print(f"ss4d {__version__}, torch {torch.__version__}, python {platform.python_version()}")
    print(f"devices: {', '.join(devices)}; torch threads: {torch.get_num_threads()}")
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for registry in (sparse_conv_backends, attention_backends):
            names = registry.available(device)
            auto = registry.resolve("auto", device).name
            print(f"{registry.family} backends on {device}: {', '.join(names)} (auto = {auto})")
    return 0


def _result_parser(sub, name: str, summary: str, output_help: str) -> argparse.ArgumentParser:
    """A command that reads a result folder of `ss4d generate` (``view``, ``export-mesh``, ``export-splats``)."""
    p = sub.add_parser(name, help=summary)
    p.add_argument("folder", help="a folder written by `ss4d generate` (needs gaussians.npz)")
    p.add_argument("-o", "--output", help=output_help)
    return p


def _add_voxel_feature_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `data synth` and `data import`: occupancy grid and per-voxel features."""
    p.add_argument("--resolution", type=int, default=16, help="occupancy grid (the SLat resolution)")
    p.add_argument("--aggregate", choices=["visible", "all"], default="visible",
                   help="average voxel features over the views where the voxel is visible, or over all views")
    p.add_argument("--features", choices=["rgb", "dinov2"], default="rgb", help="per-voxel image features")
    p.add_argument("--dinov2", help="local DINOv2 weights folder (for --features dinov2)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-clip lines")


OVERWRITE_HELP = "replace an existing output (without it a non-empty output is refused before any work)"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option's help, except for unset (None) and off (False) defaults."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **k) -> None:
        k.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*a, **k)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ss4d", description="Native 4D generation: video in, animated 3D Gaussians out.",
        epilog="exit codes: 0 success, 2 bad input (one line naming the file or option), 1 a bug in ss4d",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"ss4d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("generate", help="generate 4D Gaussians from a clip (video file, frame folder, image)")
    g.add_argument("input", help="video file (.gif, .mp4, ...), folder of frames, or image")
    g.add_argument("-o", "--output", required=True, help="output folder (PLYs, gaussians.npz, preview, summary)")
    g.add_argument("--model", help="ss4d pipeline folder, official SS4D release folder or hub id (default: the "
                   "shipped checkpoints/ss4d-tiny)")  # fmt: skip
    g.add_argument("--condition-encoder", help="DINOv2 folder or hub id for an official release (default: the "
                   "release's image_cond_model, e.g. facebook/dinov2-with-registers-large)")  # fmt: skip
    g.add_argument("--steps", "--num-inference-steps", type=int, dest="steps",
                   help="sampling steps for both stages (default: the model's, 25)")  # fmt: skip
    g.add_argument("--cfg", "--guidance-scale", type=float, dest="cfg",
                   help="classifier-free guidance of the structure stage (default: the model's)")  # fmt: skip
    g.add_argument("--slat-cfg", "--slat-guidance-scale", type=float, dest="slat_cfg",
                   help="classifier-free guidance of the SLat stage (default: the model's)")  # fmt: skip
    g.add_argument("--scheduler", help="sampler of both stages, a registered scheduler class (default: the "
                   "model's; e.g. FlowMatchHeunScheduler, FlowMatchAB2Scheduler)")  # fmt: skip
    g.add_argument("--seed", type=int, default=0, help="random seed (0 .. 2^63-1)")
    g.add_argument("--max-frames", type=int, help="keep at most this many frames (default: the first 256, with a "
                   "warning for longer clips; up to 4096)")
    g.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda or cuda:N")
    g.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    g.add_argument("--no-preview", action="store_true", help="skip the preview video")
    g.add_argument("--threads", type=int, help=THREADS_HELP)
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    g.add_argument("--viewer", action="store_true", help="also write viewer.html (self-contained browser viewer)")
    g.add_argument("--mesh", action="store_true",
                   help="also write mesh/frame_0000.glb ... (marching cubes) and mesh/animated.glb")  # fmt: skip
    g.add_argument("--mesh-level", type=float, default=0.5, help="iso level of the Gaussian density for --mesh")
    g.add_argument("--splats", type=_splat_formats, default=["compressed-ply"], metavar="FORMATS",
                   help="per-frame splat files under splats/: comma-separated compressed-ply,splat or none "
                        "(default: compressed-ply)")  # fmt: skip
    g.set_defaults(run=_generate)
    v = _result_parser(sub, "view", "write viewer.html for a result folder (open it in a browser)",
                       "HTML path (default: FOLDER/viewer.html)")  # fmt: skip
    v.add_argument("--fps", type=float, help="playback rate (default: the clip's, from structure.npz, else 8)")
    v.add_argument("--max-gaussians", type=int, help="keep at most this many Gaussians a frame (the most visible)")
    v.set_defaults(run=_view)
    em = _result_parser(sub, "export-mesh", "one GLB per frame of a result folder (marching cubes, vertex colours)",
                        "output folder (default: FOLDER/mesh)")  # fmt: skip
    em.add_argument("--resolution", type=int, default=64, help="density grid cells per axis")
    em.add_argument("--level", type=float, default=0.5, help="iso level of the Gaussian density")
    em.add_argument("--smooth", type=int, default=10, help="Taubin smoothing iterations (0: none)")
    em.add_argument("--animated", action="store_true", help="also write animated.glb: all frames in one file")
    em.add_argument("--fps", type=float, help="rate of animated.glb (default: the clip's, from structure.npz, else 8)")
    em.set_defaults(run=_export_mesh)
    es = _result_parser(sub, "export-splats", "per-frame SuperSplat .compressed.ply / antimatter15 .splat files",
                        "output folder (default: FOLDER/splats)")  # fmt: skip
    es.add_argument("--format", type=_splat_formats, default=["compressed-ply", "splat"],
                    help="comma-separated: compressed-ply,splat (default: both)")  # fmt: skip
    es.set_defaults(run=_export_splats)
    r = sub.add_parser("render", help="render a saved sequence (gaussians.npz or a PLY folder) to a video")
    r.add_argument("sequence", help="gaussians.npz or a folder of frame_*.ply")
    r.add_argument("-o", "--output", required=True, help="video path (.mp4 or .gif)")
    r.add_argument("--size", type=int, default=256, help="video width and height in pixels")
    r.add_argument("--fps", type=float, default=8.0, help="frames per second of the video")
    r.add_argument("--sweep", type=float, default=90.0, help="degrees of camera orbit over the clip")
    r.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    r.set_defaults(run=_render)
    c = sub.add_parser("convert", help="convert an official SS4D release folder or one official SS4D / TRELLIS "
                       "checkpoint (<stem>.json + .safetensors)")  # fmt: skip
    c.add_argument("checkpoint", help="a release folder (pipeline.json + ckpts/), or a model JSON with its "
                   ".safetensors next to it")  # fmt: skip
    c.add_argument("--condition-encoder", help="DINOv2 folder or hub id to ship in the converted pipeline")
    c.add_argument("-o", "--output", required=True, help="output model folder")
    c.add_argument("--trellis", action="store_true", help="a TRELLIS 3D checkpoint: inflate to the 4D model")
    c.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    c.set_defaults(run=_convert)
    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    sy = dsub.add_parser("synth", help="procedural 4D clips (ray-marched SDF objects in motion)")
    sy.add_argument("--num", type=int, default=10, help="number of clips")
    sy.add_argument("--frames", type=int, default=8, help="frames per clip")
    sy.add_argument("--out", required=True, help="folder for the clip_* folders (clips are added to it)")
    sy.add_argument("--seed", type=int, default=0, help="clip i uses seed + i")
    sy.add_argument("--size", type=int, default=64, help="image size of the videos and views")
    sy.add_argument("--views", type=int, default=4, help="orbit views per frame")
    sy.add_argument("--world", choices=["v1", "families", "families-heldout"], default="v1",
                    help="v1: ss4d-tiny's objects; families / families-heldout: the broader world of ss4d.data.world "
                    "(training families / held-out families)")  # fmt: skip
    _add_voxel_feature_args(sy)
    sy.set_defaults(run=_synth)
    im = dsub.add_parser("import", help="TRELLIS/NeRF-style RGBA renders (transforms.json + time) -> training clips")
    im.add_argument("sources", nargs="+", help="clip folders, each with a transforms.json")
    im.add_argument("--out", required=True, help="folder for the clip_* folders")
    im.add_argument("--size", type=int, help="resize the renders to this square size")
    _add_voxel_feature_args(im)
    im.set_defaults(run=_import)
    tr = sub.add_parser("train", help="train all four networks on synthetic clips and assemble a pipeline")
    tr.add_argument("config", help="JSON config (e.g. configs/ss4d-tiny.json)")
    tr.add_argument("--data", help="override the config's data folder")
    tr.add_argument("--out", help="override the config's output folder")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    tr.set_defaults(run=_train)
    ev = sub.add_parser("eval", help="novel-view PSNR / SSIM and flicker on held-out synthetic clips")
    ev.add_argument("--model", required=True, help="pipeline folder")
    ev.add_argument("--data", required=True, help="folder of clip_* (from `ss4d data synth`)")
    ev.add_argument("--limit", type=int, help="evaluate the first N clips (default: all)")
    ev.add_argument("--steps", type=int, help="sampling steps (default: the pipeline's)")
    ev.add_argument("--seed", type=int, default=0, help="random seed of every clip's generation")
    ev.add_argument("--out", help="write the metrics (with per-clip rows) to this JSON file")
    ev.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    ev.add_argument("--lpips-vgg", help="torchvision VGG16 weights file (default: torch's hub cache)")
    ev.add_argument("--lpips-linear", help="LPIPS v0.1 vgg.pth (default: inside an installed lpips package)")
    ev.add_argument("--slat-encoder", help="SLatEncoder4D folder (e.g. runs/X/slat_vae/final/encoder): adds the "
                    "SLat VAE oracle (GT voxels -> encoder -> the model's decoder)")
    ev.add_argument("--threads", type=int, help=THREADS_HELP)
    ev.add_argument("--structure-encoder", help="structure encoder or whole structure VAE folder (e.g. "
                    "checkpoints/ss4d-tiny-encoders/structure_vae): adds the structure VAE oracle (IoU)")
    ev.add_argument("--stages", action="store_true", help="also run the model's SLat stage on the true occupancy")
    ev.set_defaults(run=_eval)
    i = sub.add_parser("info", help="versions, devices and available backends")
    i.set_defaults(run=_info)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as ``warning: <message>`` on stderr, without a Python source location."""
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=file if file is not None else sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.run(args)
    except BAD_INPUT as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        print(f"hint: `ss4d {args.command} --help` lists the options", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - report, then exit 1
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
        print("hint: this is a bug in ss4d or an environment problem; rerun with `python -X dev -m ss4d.cli ...`",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
