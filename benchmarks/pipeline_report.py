"""Pipeline and rasteriser figures on this machine: per-stage CPU time of the untrained tiny pipeline on
8- and 32-frame clips, and the rasteriser's throughput.

Usage (repo root): ``python benchmarks/pipeline_report.py`` -> ``benchmarks/results/pipeline.md``.
"""

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ss4d.pipelines import build_tiny_pipeline  # noqa: E402
from ss4d.render import orbit_cameras, render_gaussians  # noqa: E402
from ss4d.representations import Gaussians  # noqa: E402


def disc_clip(T: int, size: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    frames = []
    for t in range(T):
        cx = size * (0.3 + 0.4 * t / max(T - 1, 1))
        inside = ((xx - cx) ** 2 + (yy - size / 2) ** 2 < (size * 0.2) ** 2).float()
        frames.append(torch.cat([torch.stack([inside, 0.5 * inside, 0.2 * inside]), inside[None]]))
    return torch.stack(frames)


def pipeline_rows() -> list[str]:
    pipe = build_tiny_pipeline()
    rows = []
    for T in (8, 32):
        clip = disc_clip(T)
        pipe(clip, progress=False)  # warm-up
        start = time.perf_counter()
        out = pipe(clip, progress=False)
        total = time.perf_counter() - start
        t = out.timings
        voxels = sum(int(c.shape[0]) for c in out.coords)
        gs = sum(len(g) for g in out.gaussians)
        rows.append(
            f"| {T} | {voxels:,} | {gs:,} | " + " | ".join(f"{t[k] * 1e3:.0f}" for k in
            ("preprocess", "condition", "structure", "slat", "decode")) + f" | {total * 1e3:.0f} |"
        )  # fmt: skip
    return rows


def raster_rows() -> list[str]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for n, size in ((10_000, 256), (50_000, 256), (50_000, 128)):
        xyz = torch.rand(n, 3, generator=g) * 0.6 + 0.2
        gs = Gaussians(xyz, torch.randn(n, 1, 3, generator=g), torch.full((n, 3), 1.5), torch.randn(n, 4, generator=g),
                       torch.full((n, 1), 1.0))  # fmt: skip
        cam = orbit_cameras(1, size=size)[0]
        with torch.no_grad():
            render_gaussians(gs, cam)
            start = time.perf_counter()
            for _ in range(3):
                render_gaussians(gs, cam)
            fwd = (time.perf_counter() - start) / 3
        req = [p.requires_grad_(True) for p in (gs._xyz, gs._scaling, gs._opacity)]
        start = time.perf_counter()
        render_gaussians(gs, cam).color.mean().backward()
        bwd = time.perf_counter() - start
        for p in req:
            p.requires_grad_(False)
        rate = n * size * size / fwd
        rows.append(f"| {n:,} | {size}x{size} | {fwd * 1e3:.0f} | {bwd * 1e3:.0f} | {rate / 1e9:.2f} |")
    return rows


def main() -> None:
    threads = torch.get_num_threads()
    lines = [
        "# Pipeline and rasteriser figures (CPU)", "", "Command: `python benchmarks/pipeline_report.py`", "",
        f"## Untrained tiny pipeline (`build_tiny_pipeline()`, 2 steps per stage, CFG on), {threads} threads", "",
        "| frames | voxels | Gaussians | preprocess ms | condition ms | structure ms | slat ms | decode ms | total ms"
        " |",
        "|---|---|---|---|---|---|---|---|---|", *pipeline_rows(), "",
        "## Pure-torch rasteriser (one view, 16 px tiles)", "",
        "| Gaussians | image | forward ms | forward+backward ms | G Gaussian-pixels / s (forward) |",
        "|---|---|---|---|---|", *raster_rows(), "",
        "Gaussian-pixels / s = Gaussians x pixels / forward time (the brute-force work the tiles avoid).",
    ]  # fmt: skip
    text = "\n".join(lines).rstrip() + "\n"
    (ROOT / "benchmarks" / "results" / "pipeline.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
