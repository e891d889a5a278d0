"""``ss4d eval``: generate each held-out synthetic clip, render it from the ground-truth views of every frame,
and compare (PSNR, SSIM on the ground-truth bounding box, as the paper) plus flicker (mean L1 between
consecutive frames rendered from one fixed view), and LPIPS-VGG on the same crops when its weights are on disk
(:mod:`ss4d.eval.lpips`; otherwise the result says why it is missing).

Structure: ``iou`` = mean over frames of the IoU between the generated voxels of frame t and the ground-truth
voxels of frame t; ``iou_reversed`` = the same against the ground truth of frame T-1-t. A generator that
ignores the input's motion (the same shape at every frame, or shapes unrelated to time) scores alike on
both; ``iou - iou_reversed`` > 0 measures how much of the motion the structure follows."""

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ss4d.data.synthetic import SyntheticClip
from ss4d.eval.lpips import LPIPS, lpips_if_available
from ss4d.eval.metrics import bbox_crop, flicker, psnr, ssim, voxel_iou
from ss4d.pipelines import SS4DPipeline
from ss4d.render import Camera, render_gaussians
from ss4d.utils.atomic import atomic_file, check_output

__all__ = ["evaluate"]


def _lpips_value(metric: LPIPS, pred: torch.Tensor, target: torch.Tensor) -> float:
    if min(pred.shape[-2:]) < 32:  # VGG's four poolings need some room: upsample tiny crops
        pred, target = (F.interpolate(x[None], size=(32, 32), mode="bilinear", align_corners=False)[0]
                        for x in (pred, target))  # fmt: skip
    with torch.no_grad():
        return float(metric(pred[None], target[None])[0])


def evaluate(pipe: SS4DPipeline, clip_folders: list[Path], *, seed: int = 0, num_steps: int | None = None,
             lpips: LPIPS | None = None) -> dict:  # fmt: skip
    """Average metrics over clips (white background, images in [0, 1]); LPIPS only when ``lpips`` is given."""
    rows = []
    white = torch.ones(3)
    for folder in clip_folders:
        clip = SyntheticClip.load(folder)
        video = clip.video.float() / 255
        out = pipe(video, seed=seed, num_inference_steps=num_steps, progress=False)
        T, V = clip.views.shape[:2]
        size = clip.views.shape[-1]
        p_vals, s_vals, l_vals, fixed = [], [], [], []
        for t in range(T):
            for v in range(V):
                cam = Camera(clip.viewmats[t, v], clip.focal, clip.focal, size / 2, size / 2, size, size)
                with torch.no_grad():
                    pred = render_gaussians(out.gaussians[t], cam, background=white).color.permute(2, 0, 1)
                gt = clip.views[t, v].float() / 255
                target = gt[:3] * gt[3:4] + (1 - gt[3:4])
                pc, tc = bbox_crop(gt[3], pred, target)
                p_vals.append(float(psnr(pc, tc)))
                s_vals.append(float(ssim(pc[None], tc[None])))
                if lpips is not None:
                    l_vals.append(_lpips_value(lpips, pc, tc))
            cam0 = Camera(clip.viewmats[0, 0], clip.focal, clip.focal, size / 2, size / 2, size, size)
            with torch.no_grad():
                fixed.append(render_gaussians(out.gaussians[t], cam0, background=white).color.permute(2, 0, 1))
        row = {"clip": folder.name, "psnr": sum(p_vals) / len(p_vals), "ssim": sum(s_vals) / len(s_vals),
               "flicker": float(flicker(torch.stack(fixed)))}  # fmt: skip
        if out.resolution == int(clip.meta["resolution"]):  # voxel grids comparable
            truth = [clip.coords[clip.coords[:, 0] == t, 1:] for t in range(T)]
            row["iou"] = sum(voxel_iou(out.coords[t], truth[t]) for t in range(T)) / T
            row["iou_reversed"] = sum(voxel_iou(out.coords[t], truth[T - 1 - t]) for t in range(T)) / T
        if lpips is not None:
            row["lpips"] = sum(l_vals) / len(l_vals)
        rows.append(row)
    keys = ("psnr", "ssim", "flicker") + (("lpips",) if lpips is not None else ())
    if all("iou" in r for r in rows):
        keys += ("iou", "iou_reversed")
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    result = {"clips": len(rows), **mean, "per_clip": rows}
    if "iou" not in mean:
        result["iou_missing"] = "the pipeline's voxel resolution differs from the clips' (no comparable grids)"
    return result


def evaluate_folder(model: str | Path, data: str | Path, *, limit: int | None = None, seed: int = 0,
                    num_steps: int | None = None, out: str | Path | None = None,
                    lpips_vgg: str | Path | None = None, lpips_linear: str | Path | None = None,
                    overwrite: bool = False) -> dict:  # fmt: skip
    """:func:`evaluate` on the ``clip_*`` folders under ``data``; LPIPS is added when its weights are found
    (``result["lpips_missing"]`` says why not otherwise). ``out`` is checked before any work and written whole
    (an existing file is replaced only with ``overwrite=True``)."""
    if out is not None:
        check_output(out, overwrite=overwrite, kind="file")
    folders = sorted(p for p in Path(data).glob("clip_*") if p.is_dir())[:limit]
    if not folders:
        raise FileNotFoundError(f"{data}: no clip_* folders (make some with `ss4d data synth`)")
    metric, why = lpips_if_available(lpips_vgg, lpips_linear)
    result = evaluate(SS4DPipeline.from_pretrained(model), folders, seed=seed, num_steps=num_steps, lpips=metric)
    if metric is None:
        result["lpips_missing"] = why
    if out is not None:
        atomic_file(out, lambda p: p.write_text(json.dumps(result, indent=2) + "\n"), overwrite=overwrite)
    return result
