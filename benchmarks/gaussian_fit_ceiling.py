"""How far can Gaussians on the true occupancy go? Fit them directly to a clip's views, frame by frame.

The SLat VAE's decoder outputs ``G`` Gaussians per occupied voxel, each within ``voxel_size / 2`` voxels of the
voxel centre (``tanh`` offsets), with free scale, rotation, opacity and colour. This script optimises exactly
those fields by gradient descent on the clip's stored views of each frame (white background, L1 + 0.2 (1 -
SSIM), Adam), then scores the result with ``ss4d eval``'s metric (PSNR / SSIM on the ground-truth bounding box
of every view). Three protocols:

* default: fitted and scored on the same (stored) views, an **upper bound** of what any decoder of that output
  space can render on the eval's views;
* ``--dense-views N``: fitted on N new views of the same object and frame (re-rendered from the clip's seed;
  synthetic clips only; 4 random ones per step), scored on the stored views, which the fit never sees: the
  representation's ceiling on the eval, without over-fitting the scored views (issue 14's "SLat VAE
  reconstruction ceiling" asks what the decoder could reach);
* ``--holdout``: fitted on all stored views but the last, scored on the last (sparse views: the sides no
  fitted view sees are unconstrained, so this measures view coverage more than the representation).

Baselines from the same run and the same views: grey and ground-truth-coloured Gaussians on the true occupancy
(what the eval reports as ``grey_gt_occupancy`` / ``coloured_gt_occupancy``; the latter is also the fit's start).

    python benchmarks/gaussian_fit_ceiling.py data/world-test --limit 3 --frames 4 --steps 300 --gaussians 8
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch

from ss4d.data.synthetic import SyntheticClip
from ss4d.eval.baselines import gaussians_on_voxels, gt_voxel_colours
from ss4d.eval.evaluate import Prediction, _white, score
from ss4d.eval.metrics import ssim
from ss4d.render import Camera, render_gaussians
from ss4d.representations import Gaussians


def _cameras(clip: SyntheticClip, t: int) -> list[Camera]:
    size = clip.views.shape[-1]
    return [Camera(m, clip.focal, clip.focal, size / 2, size / 2, size, size) for m in clip.viewmats[t]]


def dense_views(clip: SyntheticClip, t: int, n: int) -> tuple[list[Camera], list[torch.Tensor]]:
    """``n`` new views of frame ``t`` (azimuths evenly spread, elevations -10..50 degrees, radius 2), white
    background, rendered from the clip's scene like `ss4d data synth` renders its views."""
    from ss4d.data.synthetic import normalise_scene, random_scene, render_sdf
    from ss4d.data.world import world_scene
    from ss4d.render import orbit_view

    meta = clip.meta
    world = meta.get("world", "v1")
    seed = int(meta["seed"])
    split = "train" if world == "families" else "heldout"
    scene = random_scene(seed) if world == "v1" else world_scene(seed, split=split)
    scene = normalise_scene(scene, int(meta["num_frames_total"]))
    size, phase = clip.views.shape[-1], t / int(meta["num_frames_total"])
    to_u8 = lambda x: (x.clamp(0, 1) * 255).round().to(torch.uint8)  # noqa: E731  (as the clip stores views)
    again = to_u8(render_sdf(scene, phase, clip.viewmats[t, 0], clip.focal, size)[0])
    if (again.int() - clip.views[t, 0].int()).abs().max() > 1:
        raise SystemExit(f"{meta['seed']}: re-rendering does not reproduce the stored view; is this clip synthetic?")
    g = torch.Generator().manual_seed(seed * 1000 + t)
    cams, images = [], []
    for v in range(n):
        az = 2 * math.pi * (v + float(torch.rand(1, generator=g))) / n
        el = math.radians(float(torch.empty(1).uniform_(-10, 50, generator=g)))
        m = orbit_view(2.0, az, el)
        cams.append(Camera(m, clip.focal, clip.focal, size / 2, size / 2, size, size))
        images.append(_white(to_u8(render_sdf(scene, phase, m, clip.focal, size)[0])))
    return cams, images


def fit_frame(clip: SyntheticClip, t: int, cams: list[Camera], targets: list[torch.Tensor], *, gaussians: int,
              steps: int, lr: float, voxel_size: float, seed: int, per_step: int = 4) -> Gaussians:  # fmt: skip
    """Gaussians on frame ``t``'s true voxels, fitted to the images ``targets`` seen by ``cams`` (``per_step``
    random ones a step)."""
    R = int(clip.meta["resolution"])
    xyz = clip.coords[clip.coords[:, 0] == t, 1:]
    n, G = xyz.shape[0], gaussians
    start = gaussians_on_voxels(xyz, R, gt_voxel_colours(clip, t))
    gen = torch.Generator().manual_seed(seed)
    rep = lambda x: x.repeat_interleave(G, 0).clone()  # noqa: E731
    params = {
        "offset": (torch.rand(n, G, 3, generator=gen) * 2 - 1) * 0.5,  # spread inside the voxel
        "_features_dc": rep(start._features_dc),
        "_scaling": rep(start._scaling) - math.log(G) / 3,  # G smaller Gaussians fill the voxel
        "_rotation": torch.randn(n * G, 4, generator=gen) * 0.1,
        "_opacity": rep(start._opacity),
    }
    for p in params.values():
        p.requires_grad_(True)
    centres = ((xyz.float() + 0.5) / R)[:, None]
    reach = 0.5 * voxel_size / R

    def build() -> Gaussians:
        _xyz = (centres + torch.tanh(params["offset"]) * reach).reshape(n * G, 3)
        return Gaussians(_xyz, params["_features_dc"], params["_scaling"], params["_rotation"], params["_opacity"])

    opt = torch.optim.Adam(params.values(), lr=lr)
    white = torch.ones(3)
    for _ in range(steps):
        g = build()
        loss = 0.0
        views = torch.randperm(len(cams), generator=gen)[:per_step].tolist()
        for v in views:
            image = render_gaussians(g, cams[v], background=white).color.permute(2, 0, 1)
            loss = loss + (image - targets[v]).abs().mean() + 0.2 * (1 - ssim(image[None], targets[v][None]))
        opt.zero_grad()
        (loss / len(views)).backward()
        opt.step()
    with torch.no_grad():
        g = build()
        return Gaussians(*(x.detach() for x in (g._xyz, g._features_dc, g._scaling, g._rotation, g._opacity)))


def _only_views(clip: SyntheticClip, keep: list[int]) -> SyntheticClip:
    """The clip restricted to some views (to score a held-out view alone)."""
    from dataclasses import replace

    return replace(clip, views=clip.views[:, keep], viewmats=clip.viewmats[:, keep])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="folder of ss4d clips (data synth / data import)")
    ap.add_argument("--limit", type=int, default=3, help="clips (sorted by name)")
    ap.add_argument("--frames", type=int, default=4, help="first frames of each clip")
    ap.add_argument("--gaussians", type=int, default=8, help="Gaussians per voxel (ss4d-tiny: 8, SS4D: 32)")
    ap.add_argument("--voxel-size", type=float, default=1.5, help="offset range in voxels (the decoder's)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--holdout", action="store_true", help="fit on all views but the last, score the last")
    ap.add_argument("--dense-views", type=int, default=0, help="fit on this many new views, score the stored ones")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the rows as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    folders = sorted(p for p in Path(a.data).iterdir() if (p / "meta.json").is_file())[: a.limit]
    rows = []
    for folder in folders:
        clip = SyntheticClip.load(folder)
        clip.meta["num_frames_total"] = int(clip.meta["num_frames"])
        T = min(a.frames, clip.views.shape[0])
        clip = SyntheticClip(clip.video[:T], clip.views[:T], clip.viewmats[:T], clip.focal,
                             clip.coords[clip.coords[:, 0] < T], clip.features[clip.coords[:, 0] < T],
                             clip.visible_views[clip.coords[:, 0] < T], {**clip.meta, "num_frames": T})  # fmt: skip
        V = clip.views.shape[1]
        fit_views, scored = (list(range(V - 1)), [V - 1]) if a.holdout else (list(range(V)), list(range(V)))
        t0 = time.perf_counter()
        fitted = []
        for t in range(T):
            if a.dense_views:
                cams, targets = dense_views(clip, t, a.dense_views)
            else:
                cams = [_cameras(clip, t)[v] for v in fit_views]
                targets = [_white(clip.views[t, v]) for v in fit_views]
            fitted.append(fit_frame(clip, t, cams, targets, gaussians=a.gaussians, steps=a.steps, lr=a.lr,
                                    voxel_size=a.voxel_size, seed=t))  # fmt: skip
        seconds = time.perf_counter() - t0
        R = int(clip.meta["resolution"])
        truth = [clip.coords[clip.coords[:, 0] == t, 1:] for t in range(T)]
        coloured = [gaussians_on_voxels(v, R, gt_voxel_colours(clip, t)) for t, v in enumerate(truth)]
        scored_clip = _only_views(clip, scored)
        row = {"clip": folder.name, "frames": T, "fit_seconds": round(seconds, 1)}
        for name, pred in {
            "fit": fitted,
            "grey_gt_occupancy": [gaussians_on_voxels(v, R) for v in truth],
            "coloured_gt_occupancy": coloured,
        }.items():
            s = score(Prediction(pred), scored_clip)
            row[f"{name}_psnr"], row[f"{name}_ssim"] = round(s["psnr"], 3), round(s["ssim"], 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = [k for k in rows[0] if k.endswith(("_psnr", "_ssim"))]
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 3) for k in keys}
    print("mean", json.dumps(mean))
    names = ("gaussians", "voxel_size", "steps", "lr", "holdout", "dense_views", "frames")
    settings = {k: getattr(a, k) for k in names}
    if a.out:
        Path(a.out).write_text(json.dumps({"settings": settings, "rows": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
