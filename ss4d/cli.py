"""The ``ss4d`` command line: ``generate``, ``render``, ``convert``, ``data``, ``train``, ``eval``, ``info``.

Errors print one line (``error: ...``) plus a hint. Exit codes: 0 success, 2 bad input or usage
(missing files, unreadable clips, bad options), 1 an internal failure.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ss4d import __version__
from ss4d.errors import BackendUnavailableError, CheckpointMismatchError, FrameCountError, UnknownBackendError

BAD_INPUT = (
    FileNotFoundError, ValueError, TypeError, FrameCountError, UnknownBackendError, BackendUnavailableError,
    CheckpointMismatchError,
)  # fmt: skip


THREADS_HELP = "torch CPU threads (default: OMP_NUM_THREADS, else the idle cores: usable cores - load, at least 1)"


def _generate(args: argparse.Namespace) -> int:
    from ss4d.pipelines import SS4DPipeline
    from ss4d.pipelines.presets import shipped_tiny_path

    model = Path(args.model) if args.model is not None else shipped_tiny_path()
    if not (model / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no ss4d pipeline at {model} (expected model_index.json); pass --model DIR, or convert the official "
            "release with `ss4d convert`"
        )
    out = Path(args.output)
    start = time.perf_counter()
    _set_threads(args)
    pipe = SS4DPipeline.from_pretrained(model, device=args.device)
    result = pipe(
        args.input,
        seed=args.seed,
        num_steps=args.steps,
        cfg_strength=args.cfg,
        slat_cfg_strength=args.slat_cfg,
        max_frames=args.max_frames,
        stride=args.stride,
        progress=not args.quiet,
    )
    written = result.save(out, preview=not args.no_preview)
    if not args.quiet:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
        print(f"{result.num_frames} frames -> {out} ({len(written['ply'])} PLYs"
              f"{', ' + Path(written['preview']).name if 'preview' in written else ''}); {stages}; "
              f"total {time.perf_counter() - start:.1f}s")  # fmt: skip
    return 0


def _render(args: argparse.Namespace) -> int:
    from ss4d.data import write_video
    from ss4d.render import render_gaussians
    from ss4d.render.preview import orbit_camera
    from ss4d.representations import load_npz, load_ply

    src = Path(args.sequence)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_dir():
        plys = sorted(src.glob("*.ply"))
        if not plys:
            raise ValueError(f"{src}: no .ply files")
        frames = [load_ply(p) for p in plys]
    else:
        frames = load_npz(src)
    images = []
    with torch.no_grad():
        for t, g in enumerate(frames):
            cam = orbit_camera(t, len(frames), size=args.size, sweep=args.sweep)
            images.append(render_gaussians(g, cam, background=torch.ones(3)).color.permute(2, 0, 1))
    path = write_video(torch.stack(images), args.output, fps=args.fps)
    print(f"wrote {path}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ss4d.convert import convert_checkpoint

    result = convert_checkpoint(args.checkpoint, args.output, trellis=args.trellis)
    extra = f"; {len(result.new_keys)} new keys ({', '.join(result.notes)})" if result.new_keys else ""
    print(
        f"{type(result.model).__name__}: {result.model.num_parameters() / 1e6:.1f} M parameters -> {args.output}{extra}"
    )
    return 0


def _synth(args: argparse.Namespace) -> int:
    from ss4d.data.synthetic import make_clip

    if args.num < 1 or args.frames < 1:
        raise ValueError("--num and --frames must be >= 1")
    from ss4d.data.features import feature_extractor

    features = feature_extractor(args.features, dinov2=args.dinov2)
    out = Path(args.out)
    for i in range(args.num):
        clip = make_clip(args.seed + i, num_frames=args.frames, resolution=args.resolution, image_size=args.size,
                         num_views=args.views, aggregate=args.aggregate, features=features,
                         world=args.world)  # fmt: skip
        clip.save(out / f"clip_{args.seed + i:06d}")
        if not args.quiet:
            print(
                f"clip {i + 1}/{args.num}: seed {args.seed + i}, {clip.coords.shape[0]} voxels, {clip.meta['motions']}"
            )
    return 0


def _import(args: argparse.Namespace) -> int:
    from ss4d.data.features import feature_extractor
    from ss4d.data.rendered import load_rendered_clip

    features = feature_extractor(args.features, dinov2=args.dinov2)
    out = Path(args.out)
    for i, src in enumerate(args.sources):
        clip = load_rendered_clip(src, resolution=args.resolution, image_size=args.size, features=features,
                                  aggregate=args.aggregate)  # fmt: skip
        folder = clip.save(out / f"clip_{i:06d}")
        if not args.quiet:
            print(f"{src} -> {folder}: {clip.meta['num_frames']} frames, {clip.coords.shape[0]} voxels")
    return 0


def _train(args: argparse.Namespace) -> int:
    import json

    from ss4d.training.run import run_training

    path = Path(args.config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such training config (see configs/)")
    config = json.loads(path.read_text())
    for key in ("data", "out"):
        if getattr(args, key):
            config[key] = getattr(args, key)
    folder = run_training(config, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # once under torchrun
        print(f"pipeline written to {folder}")
    return 0


def _set_threads(args: argparse.Namespace) -> None:
    from ss4d.threads import set_threads

    set_threads(args.threads)


def _eval(args: argparse.Namespace) -> int:
    from ss4d.eval.evaluate import evaluate_folder, format_table

    _set_threads(args)
    r = evaluate_folder(args.model, args.data, limit=args.limit, seed=args.seed, num_steps=args.steps, out=args.out,
                        lpips_vgg=args.lpips_vgg, lpips_linear=args.lpips_linear, slat_encoder=args.slat_encoder,
                        structure_encoder=args.structure_encoder, stages=args.stages)  # fmt: skip
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


def _add_voxel_feature_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `data synth` and `data import`: occupancy grid and per-voxel features."""
    p.add_argument("--resolution", type=int, default=16, help="occupancy grid (the SLat resolution)")
    p.add_argument("--aggregate", choices=["visible", "all"], default="visible")
    p.add_argument("--features", choices=["rgb", "dinov2"], default="rgb", help="per-voxel image features")
    p.add_argument("--dinov2", help="local DINOv2 weights folder (for --features dinov2)")
    p.add_argument("-q", "--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ss4d", description="Native 4D generation: video in, animated 3D Gaussians out."
    )
    parser.add_argument("--version", action="version", version=f"ss4d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate 4D Gaussians from a clip (video file, frame folder, image)")
    g.add_argument("input", help="video file (.gif, .mp4, ...), folder of frames, or image")
    g.add_argument("-o", "--output", required=True, help="output folder (PLYs, gaussians.npz, preview, summary)")
    g.add_argument("--model", help="pipeline folder (default: the shipped checkpoints/ss4d-tiny)")
    g.add_argument("--steps", type=int, help="sampling steps for both stages")
    g.add_argument("--cfg", type=float, help="classifier-free guidance of the structure stage")
    g.add_argument("--slat-cfg", type=float, help="classifier-free guidance of the SLat stage")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-frames", type=int)
    g.add_argument("--stride", type=int, default=1)
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--no-preview", action="store_true", help="skip the preview video")
    g.add_argument("--threads", type=int, help=THREADS_HELP)
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    g.set_defaults(run=_generate)
    r = sub.add_parser("render", help="render a saved sequence (gaussians.npz or a PLY folder) to a video")
    r.add_argument("sequence")
    r.add_argument("-o", "--output", required=True, help="video path (.mp4 or .gif)")
    r.add_argument("--size", type=int, default=256)
    r.add_argument("--fps", type=float, default=8.0)
    r.add_argument("--sweep", type=float, default=90.0, help="degrees of camera orbit over the clip")
    r.set_defaults(run=_render)
    c = sub.add_parser("convert", help="convert an official SS4D / TRELLIS checkpoint (<stem>.json + .safetensors)")
    c.add_argument("checkpoint", help="the model JSON; its .safetensors must sit next to it")
    c.add_argument("-o", "--output", required=True, help="output model folder")
    c.add_argument("--trellis", action="store_true", help="a TRELLIS 3D checkpoint: inflate to the 4D model")
    c.set_defaults(run=_convert)
    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    sy = dsub.add_parser("synth", help="procedural 4D clips (ray-marched SDF objects in motion)")
    sy.add_argument("--num", type=int, default=10, help="number of clips")
    sy.add_argument("--frames", type=int, default=8)
    sy.add_argument("--out", required=True)
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
    im.add_argument("--out", required=True)
    im.add_argument("--size", type=int, help="resize the renders to this square size")
    _add_voxel_feature_args(im)
    im.set_defaults(run=_import)
    tr = sub.add_parser("train", help="train all four networks on synthetic clips and assemble a pipeline")
    tr.add_argument("config", help="JSON config (e.g. configs/ss4d-tiny.json)")
    tr.add_argument("--data", help="override the config's data folder")
    tr.add_argument("--out", help="override the config's output folder")
    tr.add_argument("-q", "--quiet", action="store_true")
    tr.set_defaults(run=_train)
    ev = sub.add_parser("eval", help="novel-view PSNR / SSIM and flicker on held-out synthetic clips")
    ev.add_argument("--model", required=True, help="pipeline folder")
    ev.add_argument("--data", required=True, help="folder of clip_* (from `ss4d data synth`)")
    ev.add_argument("--limit", type=int)
    ev.add_argument("--steps", type=int)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", help="write the metrics (with per-clip rows) to this JSON file")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
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
