"""One short GPU check (< 8 min on one H100/H200): CUDA tests, the released-size pipeline, backend comparisons.

Usage (repo root)::

    python benchmarks/gpu_check.py                      # on a CUDA machine -> benchmarks/results/gpu.md
    python benchmarks/gpu_check.py --tiny --out X.md    # CPU, tiny sizes, seconds (run by the test suite)

What it does, in order (each step's figures sit beside their baseline in the same run):

1. ``pytest -m cuda`` (every CUDA test; backends that are not installed skip with the reason).
2. The pipeline at the **released sizes** with random weights in bf16 (DINOv2-L/14 with registers at 518 px,
   structure flow 1024 x 24 blocks on 16^3 x 8 latents, structure decoder to 64^3, SLat flow 1024 x 24 with
   CompNet '3D_1D', Gaussian decoder 768 x 12 with 32 Gaussians per voxel) on ``--frames`` (32) frames,
   ``--steps`` (25) + 25 Euler steps with CFG (TRELLIS intervals). The SLat stage runs on a synthetic
   moving solid ellipsoid of ~20k voxels per frame at 64^3 (random weights give no realistic structure).
   Per stage: wall time (CUDA-synchronised) and ``torch.cuda.max_memory_allocated`` (targets: <= 40 s and
   <= 40 GB for the whole clip).
3. Attention: one structure-flow and one SLat-flow forward with ``sdpa`` vs ``flash_attn`` (when importable;
   on CPU ``naive`` is the comparison).
4. Sparse convolution: one SLat-flow forward with the ``torch`` reference vs ``spconv`` (target on CUDA:
   torch <= 1.5x spconv).

``--tiny`` uses the small random pipeline of :func:`ss4d.pipelines.build_tiny_pipeline`, float32, 4 frames,
2 + 2 steps and skips step 1 unless ``--pytest`` is given: the same code paths, so the script cannot rot.
"""

import argparse
import importlib.util
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ss4d.ops.attention import attention_backends  # noqa: E402
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, sparse_conv_backends  # noqa: E402
from ss4d.pipelines import SamplerParams, SS4DPipeline, build_tiny_pipeline  # noqa: E402


def released_pipeline(device: torch.device, dtype: torch.dtype) -> SS4DPipeline:
    """Released sizes (the config defaults are the released SS4D / TRELLIS-large models), random weights."""
    import transformers

    from ss4d.models import (
        DinoV2Encoder,
        GaussianDecoder4D,
        GaussianDecoder4DConfig,
        SLatFlow4D,
        SLatFlow4DConfig,
        SparseStructureDecoder,
        SparseStructureVAEConfig,
        StructureFlow4D,
        StructureFlow4DConfig,
    )

    dino = transformers.Dinov2WithRegistersConfig(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, patch_size=14,
        image_size=518, num_register_tokens=4,
    )  # fmt: skip
    with torch.device(device):
        pipe = SS4DPipeline(
            condition_encoder=DinoV2Encoder.from_model(transformers.Dinov2WithRegistersModel(dino)),
            structure_decoder=SparseStructureDecoder(SparseStructureVAEConfig()),
            structure_flow=StructureFlow4D(StructureFlow4DConfig()),
            slat_flow=SLatFlow4D(SLatFlow4DConfig(pooling="official")),
            slat_decoder=GaussianDecoder4D(GaussianDecoder4DConfig()),
            structure_sampler=SamplerParams(cfg_strength=7.5),
            slat_sampler=SamplerParams(cfg_strength=3.0),
        )
    return pipe.to(device, dtype)


def ellipsoid_coords(frames: int, res: int, semi_axes: tuple[float, float, float], device) -> torch.Tensor:
    """``(t, x, y, z)`` of a solid ellipsoid drifting along x, one per frame, rows grouped by frame."""
    axis = torch.arange(res, device=device, dtype=torch.float32)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    out = []
    for t in range(frames):
        cx = res / 2 + (res / 8) * math.sin(2 * math.pi * t / max(frames, 1))
        inside = (
            ((x - cx) / semi_axes[0]) ** 2 + ((y - res / 2) / semi_axes[1]) ** 2 + ((z - res / 2) / semi_axes[2]) ** 2
        )
        xyz = torch.nonzero(inside <= 1).int()
        out.append(torch.cat([torch.full((xyz.shape[0], 1), t, dtype=torch.int32, device=device), xyz], 1))
    return torch.cat(out)


def synced(device: torch.device) -> Callable[[], float]:
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def run_pipeline(pipe: SS4DPipeline, frames: int, steps: int, semi_axes, device) -> tuple[list[str], dict]:
    now = synced(device)
    gen = torch.Generator(device=device).manual_seed(0)
    # the default schedulers: Euler with shift 3 (TRELLIS rescale_t 3)
    ss = SamplerParams(num_steps=steps, cfg_strength=7.5, cfg_interval=(0.5, 1.0))
    slat = SamplerParams(num_steps=steps, cfg_strength=3.0, cfg_interval=(0.5, 1.0))
    images = torch.rand(frames, 3, pipe.image_size, pipe.image_size, generator=gen, device=device)
    times: dict[str, float] = {}
    start = now()
    cond = pipe.encode_condition(images)
    times["condition"] = now() - start
    start = now()
    pipe.sample_structure(cond, generator=gen, params=ss, progress=False)
    times["structure"] = now() - start
    coords = ellipsoid_coords(frames, pipe.slat_flow.config.resolution, semi_axes, device)
    start = now()
    latents = pipe.sample_slat(cond, coords, generator=gen, params=slat, progress=False)
    times["slat"] = now() - start
    start = now()
    gaussians = pipe.decode(latents)
    times["decode"] = now() - start
    memory = dict(pipe.runtime.peak_memory)
    voxels = coords.shape[0] / frames
    rows = [
        f"| {name} | {times[name]:.2f} | {'n/a' if memory[name] is None else f'{memory[name] / 2**30:.2f}'} |"
        for name in ("condition", "structure", "slat", "decode")
    ]
    peak = [v for v in memory.values() if v is not None]
    total = sum(times.values())
    rows.append(
        f"| **total** | **{total:.2f}** | **{max(peak) / 2**30:.2f}** |"
        if peak
        else f"| **total** | **{total:.2f}** | n/a |"
    )
    info = {"total_s": total, "peak": max(peak) if peak else None, "voxels_per_frame": voxels,
            "gaussians": sum(len(g) for g in gaussians)}  # fmt: skip
    return rows, info


def time_forward(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    now = synced(device)
    fn()  # warm-up (kernel maps, autotuning)
    start = now()
    for _ in range(repeat):
        fn()
    return (now() - start) / repeat * 1e3


def forward_closures(pipe: SS4DPipeline, frames: int, semi_axes, device: torch.device):
    """One structure-flow and one SLat-flow forward at the pipeline's sizes (t = 0.5, random inputs)."""
    sf, lf = pipe.structure_flow.config, pipe.slat_flow.config
    dtype = next(pipe.structure_flow.parameters()).dtype
    gen = torch.Generator(device=device).manual_seed(1)
    cond = torch.randn(1, frames, 16, sf.cond_channels, generator=gen, device=device, dtype=dtype)
    x = torch.randn(1, frames, sf.in_channels, *(sf.resolution,) * 3, generator=gen, device=device, dtype=dtype)
    t = torch.full((1,), 0.5, device=device)
    coords = ellipsoid_coords(frames, lf.resolution, semi_axes, device)
    feats = torch.randn(coords.shape[0], lf.in_channels, generator=gen, device=device, dtype=dtype)
    sparse = SparseTensor(feats, coords, SpacetimeLayout(1, frames), spatial_shape=(lf.resolution,) * 3)

    @torch.no_grad()
    def structure():
        return pipe.structure_flow(x, t, cond)

    @torch.no_grad()
    def slat():
        return pipe.slat_flow(sparse.replace(feats), t, cond)

    return structure, slat


def backend_times(registry, names, closures, device, repeat) -> dict[str, list[float] | None]:
    """Milliseconds per closure under each backend (None: not available on ``device``)."""
    times: dict[str, list[float] | None] = {}
    for name in names:
        if name not in registry.available(device):
            times[name] = None
            continue
        with registry.use(name):
            times[name] = [time_forward(fn, device, repeat) for fn in closures]
    return times


def table_rows(times: dict[str, list[float] | None], baseline: str, width: int) -> list[str]:
    rows = []
    for name, ms in times.items():
        if ms is None:
            rows.append(f"| {name} |" + " not available here |" * width + " |")
            continue
        base = times.get(baseline)
        ratio = " / ".join(f"{m / b:.2f}x" for m, b in zip(ms, base, strict=True)) if base else "n/a"
        rows.append(f"| {name} | " + " | ".join(f"{m:.1f}" for m in ms) + f" | {ratio} |")
    return rows


def cuda_tests() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return f"`pytest -m cuda`: exit {proc.returncode}, {last}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random pipeline on CPU (seconds)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu.md"))
    parser.add_argument("--frames", type=int, help="frames (default 32; 4 with --tiny)")
    parser.add_argument("--steps", type=int, help="steps per stage (default 25; 2 with --tiny)")
    parser.add_argument("--pytest", action=argparse.BooleanOptionalAction, default=None,
                        help="run `pytest -m cuda` first (default: yes, except with --tiny)")  # fmt: skip
    args = parser.parse_args(argv)
    tiny = args.tiny
    device = torch.device("cpu" if tiny else "cuda")
    if not tiny and not torch.cuda.is_available():
        print("error: no CUDA device; use --tiny on CPU", file=sys.stderr)
        return 2
    frames = args.frames or (4 if tiny else 32)
    steps = args.steps or (2 if tiny else 25)
    lines = [f"# GPU check ({'--tiny, CPU' if tiny else torch.cuda.get_device_name(device)})", ""]
    lines.append(f"torch {torch.__version__}, python {platform.python_version()}, `{' '.join(sys.argv)}`")
    lines.append("")
    if args.pytest if args.pytest is not None else not tiny:
        lines += [cuda_tests(), ""]
    if tiny:
        pipe, semi_axes, dtype = build_tiny_pipeline(), (2.5, 2.0, 2.0), torch.float32
    else:
        pipe, semi_axes, dtype = released_pipeline(device, torch.bfloat16), (20.0, 16.0, 15.0), torch.bfloat16
    rows, info = run_pipeline(pipe, frames, steps, semi_axes, device)
    lines += [
        f"## Pipeline: {frames} frames, {steps} + {steps} steps with CFG, {dtype}, random weights",
        "",
        f"SLat stage on {info['voxels_per_frame']:,.0f} voxels per frame; {info['gaussians']:,} Gaussians decoded.",
        "Targets (released sizes, 32 frames): total <= 40 s, peak <= 40 GB.",
        "",
        "| stage | time (s) | peak memory (GiB) |",
        "|---|---|---|",
        *rows,
        "",
    ]
    structure, slat = forward_closures(pipe, frames, semi_axes, device)
    repeat = 1 if tiny else 3
    attn = ["sdpa", "flash_attn"] if importlib.util.find_spec("flash_attn") or not tiny else ["sdpa", "naive"]
    attn_times = backend_times(attention_backends, attn, (structure, slat), device, repeat)
    conv_times = backend_times(sparse_conv_backends, ["spconv", "torch"], (slat,), device, repeat)
    lines += [
        "## Attention backends: one forward (ms), and the ratio to sdpa",
        "",
        "| backend | structure flow | SLat flow | vs sdpa |",
        "|---|---|---|---|",
        *table_rows(attn_times, "sdpa", 2),
        "",
        "## Sparse convolution backends: one SLat-flow forward (ms); target on CUDA: torch <= 1.5x spconv",
        "",
        "| backend | SLat flow | vs spconv |",
        "|---|---|---|",
        *table_rows(conv_times, "spconv", 1),
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
