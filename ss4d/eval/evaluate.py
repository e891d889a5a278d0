"""``ss4d eval``: generate each held-out synthetic clip, render it from the ground-truth views of every frame,
and compare, next to trivial baselines and ceilings measured on the same views (:mod:`ss4d.eval.baselines`).

Per method and clip (white background, images in [0, 1]):

* ``psnr``, ``ssim`` (torchmetrics), ``lpips`` (LPIPS-VGG, only when its weights are on disk, see
  :mod:`ss4d.eval.lpips`): the ground-truth orbit views of every frame, cropped to the ground-truth bounding box;
* ``temporal_error``: mean ``|Δprediction − Δtruth|`` between consecutive frames seen from the front video's
  fixed camera (whole image), against the clip's front video; ``flicker``: mean ``|Δprediction|`` on the same
  renders (raw jitter, for reference: a still prediction has flicker 0 but a temporal error equal to the
  truth's own flicker, reported as ``truth_flicker``); only for ``ss4d data synth`` clips, whose front camera is
  known (an imported clip's video has no camera);
* structure: ``iou`` = mean over frames of the IoU between the predicted voxels of frame t and the
  ground-truth voxels of frame t; ``iou_reversed`` = the same against the ground truth of frame T-1-t. A
  generator that ignores the input's motion scores alike on both.

Methods: the model; ``baselines`` = ``empty``, ``grey_gt_occupancy``, ``coloured_gt_occupancy`` (images) and
``gt_time_reversed``, ``gt_static`` (structure only: the ground truth played backwards, and its first frame
held); ``ceilings`` = ``slat_vae_oracle`` / ``structure_vae_oracle`` (when the encoder is given) and, with
``stages=True``, ``model_on_gt_structure`` (the model's SLat flow + decoder on the true occupancy: the
structure stage taken out of the error).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ss4d.data.synthetic import SyntheticClip, front_viewmat
from ss4d.eval.baselines import gaussians_on_voxels, gt_voxel_colours, slat_vae_oracle, structure_vae_oracle
from ss4d.eval.lpips import LPIPS, lpips_if_available
from ss4d.eval.metrics import bbox_crop, flicker, psnr, reported_ssim, temporal_error, voxel_iou
from ss4d.pipelines import SS4DPipeline
from ss4d.render import Camera, render_gaussians
from ss4d.representations import Gaussians
from ss4d.utils.atomic import atomic_file, check_output

__all__ = ["Prediction", "evaluate", "evaluate_folder", "format_table", "score"]


@dataclass
class Prediction:
    """Per-frame Gaussians (``None``: background only) and per-frame voxels ``[n, 3]`` (``None``: no structure,
    or not comparable); either list may be ``None`` when the method has no such output."""

    gaussians: list[Gaussians | None] | None
    voxels: list[Tensor] | None = None


def _lpips_value(metric: LPIPS, pred: Tensor, target: Tensor) -> float:
    if min(pred.shape[-2:]) < 32:  # VGG's four poolings need some room: upsample tiny crops
        pred, target = (F.interpolate(x[None], size=(32, 32), mode="bilinear", align_corners=False)[0]
                        for x in (pred, target))  # fmt: skip
    with torch.no_grad():
        return float(metric(pred[None], target[None])[0])


def _render(g: Gaussians | None, cam: Camera) -> Tensor:
    if g is None or len(g) == 0:
        return torch.ones(3, cam.height, cam.width)
    with torch.no_grad():
        return render_gaussians(g, cam, background=torch.ones(3)).color.permute(2, 0, 1).cpu()


def _white(rgba_u8: Tensor) -> Tensor:
    x = rgba_u8.float() / 255
    return x[:3] * x[3:4] + (1 - x[3:4])


def _truth(clip: SyntheticClip) -> list[Tensor]:
    T = clip.views.shape[0]
    return [clip.coords[clip.coords[:, 0] == t, 1:] for t in range(T)]


def score(pred: Prediction, clip: SyntheticClip, *, lpips: LPIPS | None = None) -> dict:
    """Metrics of one prediction on one clip (see the module docstring)."""
    T, V = clip.views.shape[:2]
    size = clip.views.shape[-1]
    cam = lambda m: Camera(m, clip.focal, clip.focal, size / 2, size / 2, size, size)  # noqa: E731
    row: dict = {}
    if pred.gaussians is not None:
        p_vals, s_vals, l_vals = [], [], []
        for t in range(T):
            for v in range(V):
                gt = clip.views[t, v].float() / 255
                image = _render(pred.gaussians[t], cam(clip.viewmats[t, v]))
                pc, tc = bbox_crop(gt[3], image, _white(clip.views[t, v]))
                p_vals.append(float(psnr(pc, tc)))
                s_vals.append(float(reported_ssim(pc[None], tc[None])))
                if lpips is not None:
                    l_vals.append(_lpips_value(lpips, pc, tc))
        row.update(psnr=sum(p_vals) / len(p_vals), ssim=sum(s_vals) / len(s_vals))
        if lpips is not None:
            row["lpips"] = sum(l_vals) / len(l_vals)
        if clip.meta.get("format") == "ss4d-synthetic-v1":  # the front video's camera is known
            front = cam(front_viewmat())
            fixed = torch.stack([_render(pred.gaussians[t], front) for t in range(T)])
            truth = torch.stack([_white(clip.video[t]) for t in range(T)])
            row.update(temporal_error=float(temporal_error(fixed, truth)), flicker=float(flicker(fixed)),
                       truth_flicker=float(flicker(truth)))  # fmt: skip
    if pred.voxels is not None:
        truth = _truth(clip)
        row["iou"] = sum(voxel_iou(pred.voxels[t], truth[t]) for t in range(T)) / T
        row["iou_reversed"] = sum(voxel_iou(pred.voxels[t], truth[T - 1 - t]) for t in range(T)) / T
    return row


def _gt_occupancy(clip: SyntheticClip, coloured: bool) -> Prediction:
    R = int(clip.meta["resolution"])
    truth = _truth(clip)
    colours = [gt_voxel_colours(clip, t) if coloured else None for t in range(len(truth))]
    return Prediction([gaussians_on_voxels(v, R, c) for v, c in zip(truth, colours, strict=True)])


def _references(clip: SyntheticClip) -> dict[str, Prediction]:
    """The baselines of one clip (module docstring)."""
    truth = _truth(clip)
    return {
        "empty": Prediction([None] * len(truth)),
        "grey_gt_occupancy": _gt_occupancy(clip, coloured=False),
        "coloured_gt_occupancy": _gt_occupancy(clip, coloured=True),
        "gt_time_reversed": Prediction(None, truth[::-1]),
        "gt_static": Prediction(None, [truth[0]] * len(truth)),
    }


def _mean(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "clip" and all(k in r for r in rows)]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def evaluate(pipe: SS4DPipeline, clip_folders: list[Path], *, seed: int = 0, num_steps: int | None = None,
             lpips: LPIPS | None = None, slat_encoder: torch.nn.Module | None = None,
             structure_encoder: torch.nn.Module | None = None, stages: bool = False) -> dict:  # fmt: skip
    """Average metrics over clips for the model, the baselines and the ceilings (module docstring)."""
    rows: list[dict] = []
    ref_rows: dict[str, list[dict]] = {}
    for folder in clip_folders:
        clip = SyntheticClip.load(folder)
        video = clip.video.float() / 255
        comparable = pipe.slat_flow.config.resolution == int(clip.meta["resolution"])
        out = pipe(video, seed=seed, num_inference_steps=num_steps, progress=False)
        model = Prediction(out.gaussians, out.coords if comparable else None)
        rows.append({"clip": folder.name, **score(model, clip, lpips=lpips)})
        methods = _references(clip)
        if slat_encoder is not None and comparable:
            methods["slat_vae_oracle"] = Prediction(slat_vae_oracle(slat_encoder, pipe.slat_decoder, clip))
        if structure_encoder is not None and comparable:
            recon = structure_vae_oracle(structure_encoder, pipe.structure_decoder, clip)
            methods["structure_vae_oracle"] = Prediction(None, recon)
        if stages and comparable:
            on_truth = pipe(video, seed=seed, num_inference_steps=num_steps, progress=False, structure=clip.coords)
            methods["model_on_gt_structure"] = Prediction(on_truth.gaussians)
        for name, pred in methods.items():
            ref_rows.setdefault(name, []).append({"clip": folder.name, **score(pred, clip, lpips=lpips)})
    result = {"clips": len(rows), **_mean(rows), "per_clip": rows}
    if "iou" not in result:
        result["iou_missing"] = "the pipeline's voxel resolution differs from the clips' (no comparable grids)"
    ceilings = ("structure_vae_oracle", "slat_vae_oracle", "model_on_gt_structure")
    for group, names in (("baselines", [n for n in ref_rows if n not in ceilings]), ("ceilings", ceilings)):
        result[group] = {n: {**_mean(ref_rows[n]), "per_clip": ref_rows[n]} for n in names if n in ref_rows}
    return result


def evaluate_folder(model: str | Path, data: str | Path, *, limit: int | None = None, seed: int = 0,
                    num_steps: int | None = None, out: str | Path | None = None,
                    lpips_vgg: str | Path | None = None, lpips_linear: str | Path | None = None,
                    slat_encoder: str | Path | None = None, structure_encoder: str | Path | None = None,
                    stages: bool = False, overwrite: bool = False) -> dict:  # fmt: skip
    """:func:`evaluate` on the ``clip_*`` folders under ``data``; LPIPS is added when its weights are found
    (``result["lpips_missing"]`` says why not otherwise); ``slat_encoder``: a ``SLatEncoder4D`` model folder
    (e.g. a training run's ``slat_vae/final/encoder``) for the SLat VAE oracle; ``structure_encoder``: a
    ``SparseStructureEncoder`` or whole ``SparseStructureVAE`` folder for the structure VAE oracle
    (:mod:`ss4d.training.refit` makes both). ``out`` is checked before any work and written whole (an existing
    file is replaced only with ``overwrite=True``)."""
    from ss4d.models import SLatEncoder4D

    if out is not None:
        check_output(out, overwrite=overwrite, kind="file")
    folders = sorted(p for p in Path(data).glob("clip_*") if p.is_dir())[:limit]
    if not folders:
        raise FileNotFoundError(f"{data}: no clip_* folders (make some with `ss4d data synth`)")
    metric, why = lpips_if_available(lpips_vgg, lpips_linear)
    pipe = SS4DPipeline.from_pretrained(model)
    encoder = None
    if slat_encoder is not None:
        encoder = SLatEncoder4D.from_pretrained(slat_encoder, device=pipe.device).eval()
    ss_encoder = None
    if structure_encoder is not None:
        ss_encoder = _structure_encoder(Path(structure_encoder), pipe.device)
    result = evaluate(pipe, folders, seed=seed, num_steps=num_steps, lpips=metric, slat_encoder=encoder,
                      structure_encoder=ss_encoder, stages=stages)  # fmt: skip
    if metric is None:
        result["lpips_missing"] = why
    if slat_encoder is None:
        result["slat_vae_oracle_missing"] = (
            "needs the SLat encoder (not part of a pipeline folder): pass "
            "--slat-encoder DIR, e.g. a training run's slat_vae/final/encoder or python -m ss4d.training.refit"
        )
    if out is not None:
        atomic_file(out, lambda p: p.write_text(json.dumps(result, indent=2) + "\n"), overwrite=overwrite)
    return result


def _structure_encoder(folder: Path, device: torch.device) -> torch.nn.Module:
    """A ``SparseStructureEncoder`` folder, or the encoder of a whole ``SparseStructureVAE`` folder."""
    from safetensors import safe_open

    from ss4d.models import SparseStructureEncoder, SparseStructureVAE

    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: not a model folder (expected config.json + model.safetensors)")
    with safe_open(str(weights), "pt") as f:
        whole_vae = any(k.startswith("encoder.") for k in f.keys())  # noqa: SIM118 - safe_open is not a dict
    if whole_vae:
        return SparseStructureVAE.from_pretrained(folder, device=device).encoder.eval()
    return SparseStructureEncoder.from_pretrained(folder, device=device).eval()


def format_table(result: dict) -> str:
    """A text table of the model, the baselines and the ceilings (means over clips)."""
    cols = ("psnr", "ssim", "lpips", "temporal_error", "flicker", "iou", "iou_reversed")
    rows = [("model", result)] + [(n, r) for g in ("baselines", "ceilings") for n, r in result.get(g, {}).items()]
    shown = [c for c in cols if any(c in r for _, r in rows)]
    lines = [" | ".join([f"{'method':<22}"] + [f"{c:>14}" for c in shown])]
    for name, r in rows:
        lines.append(" | ".join([f"{name:<22}"] + [f"{r[c]:>14.4f}" if c in r else f"{'':>14}" for c in shown]))
    return "\n".join(lines)
