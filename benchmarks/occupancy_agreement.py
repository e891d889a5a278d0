"""How far `ss4d data import`'s occupancy (visual hull of silhouettes) agrees with `ss4d data synth`'s (exact SDF).

Renders held-out synthetic objects from V orbit views (exact sphere-traced silhouettes), carves the visual hull
as `ss4d data import` does, and reports the mean IoU with `ss4d.data.synthetic.occupancy` at 16^3:

* ``before``: the import's previous definition (surface voxels of the conservative hull: centre or any corner
  inside every silhouette);
* ``after``: the current one (voxels on either side of the centre hull's surface, `crossing_voxels`);
* ``exact``: the current definition with the object's exact inside test instead of the hull (the residual
  difference of the two definitions when the hull is perfect).

    python benchmarks/occupancy_agreement.py [--views 4 24] [--seeds 100000 100003 100012 5]
"""

import argparse
import math

import torch

from ss4d.data.rendered import crossing_voxels, surface_voxels, visual_hull
from ss4d.data.synthetic import normalise_scene, occupancy, random_scene, render_sdf, scene_sdf
from ss4d.eval.metrics import voxel_iou
from ss4d.render.camera import fov_to_focal, orbit_view


def agreement(seed: int, views: int, *, resolution: int = 16, size: int = 96, phase: float = 0.25) -> dict:
    scene = normalise_scene(random_scene(seed), 16)
    focal = fov_to_focal(40.0, size)
    mats, alphas = [], []
    for k in range(views):
        m = orbit_view(2.0, 2 * math.pi * k / views, math.radians((-10, 20, 45, 70)[k % 4]))
        mats.append(m)
        alphas.append(render_sdf(scene, phase, m, focal, size)[0][3])
    A, M = torch.stack(alphas), torch.stack(mats)
    truth = occupancy(scene, phase, resolution)
    idx = torch.stack(torch.meshgrid(*[torch.arange(resolution)] * 3, indexing="ij"), -1).reshape(-1, 3)
    inside = scene_sdf(scene, (idx.float() + 0.5) / resolution - 0.5, phase)[0].reshape((resolution,) * 3) <= 0
    return {
        "before": voxel_iou(truth, surface_voxels(visual_hull(A, M, focal, resolution, conservative=True))),
        "after": voxel_iou(truth, crossing_voxels(visual_hull(A, M, focal, resolution))),
        "exact": voxel_iou(truth, crossing_voxels(inside)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--views", type=int, nargs="+", default=[4, 24])
    ap.add_argument("--seeds", type=int, nargs="+", default=[100000, 100003, 100012, 5])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| views | seeds | IoU before | IoU after | IoU, exact inside test |\n|---|---|---|---|---|")
    for v in args.views:
        rows = [agreement(s, v) for s in args.seeds]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        span = {k: (min(r[k] for r in rows), max(r[k] for r in rows)) for k in rows[0]}
        cells = " | ".join(f"{mean[k]:.3f} ({span[k][0]:.2f}-{span[k][1]:.2f})" for k in ("before", "after", "exact"))
        print(f"| {v} | {len(rows)} | {cells} |")


if __name__ == "__main__":
    main()
