"""Export and viewer figures for one result folder of `ss4d generate --viewer`: bytes per format (beside the
3DGS PLY), writer and mesh times with triangle counts, and how closely viewer.html in headless Chromium matches
ss4d's rasteriser (beside the difference between consecutive frames, i.e. what a real change looks like).

Usage (repo root): ``ss4d generate examples/clips/synth_100012.gif -o out/synth --viewer`` then
``python benchmarks/export_report.py out/synth`` -> ``benchmarks/results/export.md``.
"""

import argparse
import base64
import io
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ss4d.export import compressed_ply_bytes, gaussians_to_mesh, load_result_gaussians, splat_bytes  # noqa: E402
from ss4d.render.camera import Camera, orbit_view  # noqa: E402
from ss4d.render.rasterize import project_gaussians, rasterize  # noqa: E402
from ss4d.representations import save_ply  # noqa: E402
from ss4d.viewer import decode_frame, read_viewer_html, splat_frame  # noqa: E402
from ss4d.viewer.build import viewer_from_folder  # noqa: E402
from ss4d.viewer.pack import encode_sequence  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def render(frame, cam: Camera) -> np.ndarray:
    img = rasterize(project_gaussians(**frame.torch(), camera=cam), cam.width, cam.height, background=torch.ones(3))
    return img.color.clamp(0, 1).numpy()


def browser_rows(folder: Path, frames, size: int = 192) -> list[str]:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    exe = next((p for p in map(shutil.which, ("chromium-headless-shell", "chromium")) if p), None)
    if exe is None:
        return ["(no Chromium: browser figures skipped)"]
    meta, blob = read_viewer_html((folder / "viewer.html").read_text())
    meta_frames = meta["frames"]
    rows, T = [], len(frames)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe, args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
        )
        page = browser.new_page()
        page.goto((folder / "viewer.html").as_uri())
        page.evaluate("ss4dViewer.ready")
        for t in sorted({0, T // 2, T - 1}):
            for az in (-45.0, 45.0, 150.0):
                cam = Camera.from_fov(orbit_view(2.0, math.radians(az), math.radians(20)), 40.0, size, size)
                c = {"viewmat": cam.viewmat.flatten().tolist(), "fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy}
                page.evaluate("([c, f, s]) => { ss4dViewer.pause(); ss4dViewer.setSize(s, s); ss4dViewer.setCamera(c);"
                              " ss4dViewer.setFrame(f); }", [c, t, size])  # fmt: skip
                png = base64.b64decode(page.evaluate("ss4dViewer.snapshot()").split(",", 1)[1])
                shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255
                deq = render(decode_frame(meta_frames[t], blob), cam)
                orig = render(splat_frame(frames[t]), cam)
                nxt = render(splat_frame(frames[min(t + 1, T - 1) if t < T - 1 else t - 1]), cam)
                rows.append(f"| {t} | {az:.0f} | {np.abs(shot - deq).mean():.5f} | {np.abs(shot - orig).mean():.5f} | "
                            f"{np.abs(deq - orig).mean():.5f} | {np.abs(nxt - orig).mean():.5f} | "
                            f"{np.abs(orig - 1).mean():.4f} |")  # fmt: skip
        browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a result folder of `ss4d generate --viewer`")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "export.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.folder)
    frames = load_result_gaussians(folder)
    T, n = len(frames), sum(len(g) for g in frames)
    sizes, times = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        _, times["3DGS PLY (baseline)"] = timed(
            lambda: [save_ply(g, Path(tmp) / f"{i}.ply") for i, g in enumerate(frames)]
        )
        sizes["3DGS PLY (baseline)"] = sum((Path(tmp) / f"{i}.ply").stat().st_size for i in range(T))
    comp, times[".compressed.ply"] = timed(lambda: [compressed_ply_bytes(g) for g in frames])
    spl, times[".splat"] = timed(lambda: [splat_bytes(g) for g in frames])
    sizes[".compressed.ply"], sizes[".splat"] = sum(map(len, comp)), sum(map(len, spl))
    (meta, blob), times["viewer encoding (binary)"] = timed(encode_sequence, [splat_frame(g) for g in frames])
    sizes["viewer encoding (binary)"] = len(blob)
    sizes["viewer encoding (base64 in the page)"] = len(base64.b64encode(blob))
    sizes["gaussians.npz (whole sequence, float32, zip)"] = (folder / "gaussians.npz").stat().st_size
    _, times["viewer.html (all of it)"] = timed(viewer_from_folder, folder)
    sizes["viewer.html (all of it)"] = (folder / "viewer.html").stat().st_size
    lines = [f"# Exports of `{folder.name}` ({T} frames, {n / T:.0f} Gaussians per frame on average)", "",
             f"Written by `python benchmarks/export_report.py {args.folder}`; CPU, 1 torch thread.", "",
             "| format | bytes per frame | bytes per Gaussian | vs PLY | write time per frame (ms) |",
             "|---|---|---|---|---|"]  # fmt: skip
    base = sizes["3DGS PLY (baseline)"]
    for k, v in sizes.items():
        t = f"{times[k] / T * 1000:.1f}" if k in times else ""
        lines.append(f"| {k} | {v / T:,.0f} | {v / n:.1f} | {v / base:.2f} | {t} |")
    lines += ["", "Meshes (`ss4d export-mesh`, level 0.5, 10 Taubin iterations):", "",
              "| grid | triangles per frame (mean, min-max) | vertices (mean) | seconds per frame (mean) |",
              "|---|---|---|---|"]  # fmt: skip
    for res in (48, 64, 96):
        stats = [timed(gaussians_to_mesh, g, resolution=res) for g in frames]
        tris = [len(m.faces) for m, _ in stats]
        verts, secs = np.mean([len(m.vertices) for m, _ in stats]), np.mean([s for _, s in stats])
        lines.append(f"| {res}^3 | {np.mean(tris):,.0f} ({min(tris):,}-{max(tris):,}) | {verts:,.0f} | {secs:.2f} |")
    lines += ["", "viewer.html in headless Chromium (SwiftShader WebGL2) against ss4d's rasteriser, 192 px, "
              "mean absolute difference per channel in [0, 1]:", "",
              "| frame | azimuth | browser vs rasteriser (same dequantised Gaussians) | browser vs rasteriser "
              "(original Gaussians) | quantisation alone | baseline: next frame vs this one | baseline: object vs "
              "white |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += browser_rows(folder, frames)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
