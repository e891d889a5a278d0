"""``ss4d train CONFIG.json``: train the four networks stage by stage on synthetic clips, then assemble a
pipeline folder (``<out>/pipeline``) that ``SS4DPipeline.from_pretrained`` and ``ss4d generate`` load.

Stages, in order (each resumes from its latest checkpoint, and is skipped when finished):
``structure_vae`` -> ``slat_vae`` (encoder + Gaussian decoder, render loss) -> ``condition_encoder``
(optional: pre-trains the tiny image encoder on a supervised probe task, then freezes it, as SS4D's DINOv2 is
frozen; see :mod:`ss4d.training.probe`) -> ``structure_flow`` (trains the condition encoder with it when there
is no ``condition_encoder`` stage) -> ``slat_flow`` (latents normalised by dataset statistics). The flows use a
progressive frame schedule (``frame_schedule: [[step, frames], ...]``) and random black-mask augmentation.

Each stage is one function (``train_<stage>``) taking the shared :class:`RunContext`, its spec and the frozen
networks it builds on, and returning what it trained; :func:`assemble_pipeline` writes the pipeline folder.
"""

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ss4d.errors import ConfigError
from ss4d.models import (
    GaussianDecoder4D,
    SLatEncoder4D,
    SLatFlow4D,
    SparseStructureVAE,
    StructureFlow4D,
    TinyImageEncoder,
)
from ss4d.ops.sparse import SparseTensor
from ss4d.pipelines import SamplerParams, SS4DPipeline, legacy_sampler
from ss4d.pipelines.folder import read_index
from ss4d.training.config import DEFAULT_IMAGE_SIZE, validate_config
from ss4d.training.core import TrainConfig, Trainer
from ss4d.training.data import (
    ClipDataset,
    condition_frames,
    occupancy_grid,
    random_black_masks,
    slat_vae_batch,
    structure_batch,
    voxel_batch,
)
from ss4d.training.losses import structure_vae_loss
from ss4d.training.probe import StructureProbe, StructureProbeConfig, condition_pretrain_loss
from ss4d.training.recipes import slat_flow_loss, slat_vae_loss, structure_flow_loss

__all__ = [
    "ClipCache",
    "RunContext",
    "assemble_pipeline",
    "frames_at",
    "run_training",
    "train_condition_encoder",
    "train_slat_flow",
    "train_slat_vae",
    "train_structure_flow",
    "train_structure_vae",
]


def frames_at(schedule: list[list[int]], step: int) -> int:
    """Frames per clip at ``step`` from ``[[start_step, frames], ...]`` (the last start <= step)."""
    frames = schedule[0][1]
    for start, n in schedule:
        if step >= start:
            frames = n
    return frames


def _component(spec: dict, key: str, cls: type, defaults: dict | None = None) -> torch.nn.Module:
    """Build the stage's ``key`` network: from ``spec[key]`` (a config dict, over ``defaults``), or, for
    fine-tuning, from a model folder ``spec["init"][key]`` (``save_pretrained`` / ``ss4d convert`` output).
    The spec was checked by :func:`~ss4d.training.config.validate_config`."""
    init = spec.get("init", {})
    if key in init:
        return cls.from_pretrained(init[key])
    return cls(cls.config_class.from_dict({**(defaults or {}), **spec.get(key, {})}))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _is_main() -> bool:
    return not _distributed() or dist.get_rank() == 0


def _barrier() -> None:
    if _distributed():
        dist.barrier()


def _join_process_group() -> bool:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1; NCCL on CUDA, else gloo)
    unless one exists; True when this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or _distributed():
        return False
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def _device(config: dict) -> torch.device:
    """``config["device"]``, else CUDA when available (the ``LOCAL_RANK`` GPU under torchrun), else CPU."""
    device = torch.device(config.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _to(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensors, sparse tensors, tuples/lists and dataclasses of them) to ``device``."""
    if isinstance(batch, (torch.Tensor, SparseTensor)):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: _to(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch)})  # fmt: skip
    return batch


def _save_final(out: Path, parts: dict[str, torch.nn.Module]) -> None:
    """The stage's trained (EMA) networks as model folders ``<stage>/final/<key>`` (usable as ``init``);
    written by rank 0, the other ranks wait for it."""
    if _is_main():
        for key, module in parts.items():
            module.save_pretrained(out / "final" / key, overwrite=True)  # whole or not at all; a rerun replaces it
    _barrier()


def _trainer(model, batch_fn, loss_fn, spec: dict, out: Path, seed: int) -> Trainer:
    trainer = Trainer(model, batch_fn, loss_fn, TrainConfig(**{"seed": seed, **spec.get("train", {})}), out)
    trainer.resume()
    return trainer


def _finish(trainer: Trainer, progress: bool) -> None:
    trainer.train(progress=progress)
    trainer.model.load_state_dict(trainer.ema_state_dict())  # ship the EMA weights
    trainer.plot()


def run_training(config: dict[str, Any] | str | Path, *, progress: bool = True) -> Path:
    """Run every stage of ``config`` (dict or JSON path); returns the assembled pipeline folder.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes join one group and train with DDP: every rank
    draws its own batches, rank 0 writes checkpoints, logs and model folders. Networks train on
    ``config["device"]`` (default: the rank's GPU when CUDA is available, else the CPU); batches and random
    draws are made on the CPU, so a run's data does not depend on the device.
    """
    joined = _join_process_group()
    try:
        return _run(config, progress=progress and _is_main())
    finally:
        if joined:
            dist.destroy_process_group()


def _run(config: dict[str, Any] | str | Path, *, progress: bool) -> Path:
    if not isinstance(config, dict):
        config = json.loads(Path(config).read_text())
    validate_config(config, check_paths=True)  # every stage's settings, before hours of the earlier ones
    slat_norm = _init_normalization(config["stages"]["slat_flow"])  # its errors too
    run = RunContext(
        data=ClipDataset(config["data"], limit=config.get("limit")),
        out=Path(config["out"]),
        seed=int(config.get("seed", 0)),
        image_size=int(config.get("image_size", DEFAULT_IMAGE_SIZE)),
        device=_device(config),
        progress=progress,
    )
    st = config["stages"]
    structure_vae = train_structure_vae(run, st["structure_vae"])
    slat_vae = train_slat_vae(run, st["slat_vae"])
    clips = ClipCache(run, structure_vae)
    pretrained = None
    if st.get("condition_encoder") is not None:
        pretrained = train_condition_encoder(run, st["condition_encoder"], clips)
    structure_flow, cond_encoder = train_structure_flow(run, st["structure_flow"], clips, pretrained)
    slat_flow, mean, std = train_slat_flow(run, st["slat_flow"], clips, slat_vae, cond_encoder, slat_norm)
    return assemble_pipeline(run, config, cond_encoder=cond_encoder, structure_decoder=structure_vae.decoder,
                             structure_flow=structure_flow, slat_flow=slat_flow, slat_decoder=slat_vae["decoder"],
                             slat_mean=mean, slat_std=std)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every stage shares: the clips, the output folder, the seed, the condition image size, the device."""

    data: ClipDataset
    out: Path
    seed: int
    image_size: int
    device: torch.device
    progress: bool


class ClipCache:
    """Deterministic per-clip values, computed once: preprocessed condition frames and structure latents."""

    def __init__(self, run: RunContext, structure_vae: SparseStructureVAE) -> None:
        self.run, self.structure_vae = run, structure_vae
        self.frames = functools.cache(self._frames)
        self.latents = functools.cache(self._latents)

    def _frames(self, i: int, frames: int) -> torch.Tensor:
        return condition_frames(self.run.data.clips[i], frames, self.run.image_size)

    def _latents(self, i: int) -> torch.Tensor:  # [T, C, r, r, r]; the structure encoder is per frame
        with torch.no_grad():
            return self.structure_vae.encoder(occupancy_grid(self.run.data.clips[i])[None].to(self.run.device))[1][0]


def train_structure_vae(run: RunContext, spec: dict) -> SparseStructureVAE:
    """Stage 1: the structure VAE (dice + KL on per-frame occupancy); returned frozen."""
    torch.manual_seed(run.seed)
    vae = _component(spec, "model", SparseStructureVAE, {}).to(run.device)
    batch = lambda g, s: _to(structure_batch(run.data, g, spec.get("batch_size", 2), spec.get("frames", 4)),  # noqa: E731
                             run.device)  # fmt: skip
    _finish(_trainer(vae, batch, structure_vae_loss, spec, run.out / "structure_vae", run.seed), run.progress)
    _save_final(run.out / "structure_vae", {"model": vae})
    return vae.eval().requires_grad_(False)


def train_slat_vae(run: RunContext, spec: dict) -> torch.nn.ModuleDict:
    """Stage 2: the SLat VAE (``encoder`` + Gaussian ``decoder``, render loss); returned frozen."""
    torch.manual_seed(run.seed + 1)
    slat_vae = torch.nn.ModuleDict({
        "encoder": _component(spec, "encoder", SLatEncoder4D),
        "decoder": _component(spec, "decoder", GaussianDecoder4D),
    }).to(run.device)  # fmt: skip
    lpips = None
    if spec.get("lpips_weight"):  # TRELLIS uses 0.2; needs the weights on disk (ss4d.eval.lpips)
        from ss4d.eval.lpips import load_lpips

        lpips = load_lpips(spec.get("lpips_vgg"), spec.get("lpips_linear")).to(run.device)

    def vae_loss(m, b, g):
        return slat_vae_loss(m["encoder"], m["decoder"], b, g, lpips=lpips, lpips_weight=spec.get("lpips_weight", 0.0))

    batch = lambda g, s: _to(slat_vae_batch(run.data, g, spec.get("frames", 2)), run.device)  # noqa: E731
    _finish(_trainer(slat_vae, batch, vae_loss, spec, run.out / "slat_vae", run.seed), run.progress)
    _save_final(run.out / "slat_vae", dict(slat_vae.items()))
    return slat_vae.eval().requires_grad_(False)


def train_condition_encoder(run: RunContext, spec: dict, clips: ClipCache) -> TinyImageEncoder:
    """Optional stage 3: pre-train the tiny image encoder on the probe task; returned frozen."""
    data = run.data
    torch.manual_seed(run.seed + 4)
    encoder = _component(spec, "model", TinyImageEncoder, {"image_size": run.image_size})
    probe = StructureProbe(StructureProbeConfig.from_dict({
        "channels": encoder.out_channels, "image_patch": encoder.config.patch_size,
        "resolution": data.resolution, **spec.get("probe", {})}))  # fmt: skip
    pretrain = torch.nn.ModuleDict({"encoder": encoder, "probe": probe}).to(run.device)

    def pretrain_batch(g: torch.Generator, step: int):
        """``batch_size`` random frames of random clips: (masked frames, clean frames, occupancy)."""
        idx = data.pick_indices(g, spec.get("batch_size", 16))
        lengths = [int(data.clips[i].meta["num_frames"]) for i in idx]
        ts = [int(torch.randint(n, (1,), generator=g)) for n in lengths]
        picks = list(zip(idx, lengths, ts, strict=True))
        clean = torch.stack([clips.frames(i, n)[t] for i, n, t in picks])
        occ = torch.stack([occupancy_grid(data.clips[i])[t] for i, _, t in picks])
        return _to((random_black_masks(clean, g, p=spec.get("mask_prob", 0.5)), clean, occ), run.device)

    def probe_loss(m, b, g):
        return condition_pretrain_loss(m["encoder"], m["probe"], *b, pixel_weight=spec.get("pixel_weight", 1.0))

    _finish(_trainer(pretrain, pretrain_batch, probe_loss, spec, run.out / "condition_encoder", run.seed),
            run.progress)  # fmt: skip
    _save_final(run.out / "condition_encoder", {"model": encoder})
    pretrain.eval().requires_grad_(False)
    return encoder


def train_structure_flow(
    run: RunContext, spec: dict, clips: ClipCache, pretrained: torch.nn.Module | None
) -> tuple[StructureFlow4D, torch.nn.Module]:
    """Stage 4: the structure flow, with its own condition encoder unless one was ``pretrained`` (frozen);
    returns both, frozen."""
    data = run.data
    torch.manual_seed(run.seed + 2)
    parts = {"flow": _component(spec, "model", StructureFlow4D)}
    if pretrained is None:
        parts["cond"] = _component(spec, "cond_encoder", TinyImageEncoder, {"image_size": run.image_size})
    flow_and_cond = torch.nn.ModuleDict(parts).to(run.device)
    cond_encoder = pretrained if pretrained is not None else flow_and_cond["cond"]
    schedule = spec.get("frame_schedule", [[0, 4]])

    def flow_batch(g: torch.Generator, step: int):
        frames = frames_at(schedule, step)
        idx = data.pick_indices(g, spec.get("batch_size", 2))
        latents = torch.stack([clips.latents(i)[:frames] for i in idx])
        cond = torch.stack([clips.frames(i, frames) for i in idx])
        return _to((latents, random_black_masks(cond, g, p=spec.get("mask_prob", 0.5))), run.device)

    t = _trainer(flow_and_cond, flow_batch,
                 lambda m, b, g: structure_flow_loss(m["flow"], cond_encoder, b[0], b[1], g),
                 spec, run.out / "structure_flow", run.seed)  # fmt: skip
    _finish(t, run.progress)
    final = {"model": flow_and_cond["flow"]}
    if "cond" in flow_and_cond:
        final["cond_encoder"] = flow_and_cond["cond"]
    _save_final(run.out / "structure_flow", final)
    flow_and_cond.eval().requires_grad_(False)
    return flow_and_cond["flow"], cond_encoder


def _init_normalization(spec: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The latent ``(mean, std)`` that the SLat flow stage keeps (``normalization``: ``"init"``, the default
    when its ``init.model`` lies in a pipeline folder with ``slat_normalization``), or None to compute them from
    the training clips' latents (``"data"``, the default otherwise). A flow fine-tuned or passed through with
    statistics other than those it was trained with would see its inputs shifted and scaled."""
    choice = spec.get("normalization")
    folder = spec.get("init", {}).get("model")
    norm = None
    if folder is not None and choice != "data":
        parent = Path(folder).resolve().parent
        if (parent / "model_index.json").is_file():
            raw = read_index(parent, (), set()).raw.get("slat_normalization", {})  # checks the numbers
            if "mean" in raw and "std" in raw:
                norm = torch.tensor(raw["mean"]), torch.tensor(raw["std"])
    if choice == "init" and norm is None:
        raise ConfigError(f"stages.slat_flow.normalization 'init': {folder} is not a component of a pipeline folder "
                          "with slat_normalization; use 'data' or init from a pipeline's slat_flow")  # fmt: skip
    if norm is not None and norm[0].shape != norm[1].shape:
        raise ConfigError(f"{folder}: the pipeline's slat_normalization mean and std differ in length")
    return norm


def train_slat_flow(
    run: RunContext,
    spec: dict,
    clips: ClipCache,
    slat_vae: torch.nn.ModuleDict,
    cond_encoder: torch.nn.Module,
    init_norm: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[SLatFlow4D, torch.Tensor, torch.Tensor]:
    """Stage 5: the SLat flow on normalised latents; returns it and the per-channel ``mean``, ``std``:
    ``init_norm`` (from :func:`_init_normalization`) when given, else the training clips' statistics."""
    data = run.data
    if init_norm is not None:  # keep the space the initial flow was trained in
        mean, std = (v.to(run.device) for v in init_norm)
        if run.progress and _is_main():
            print(f"slat_flow: latent normalization of the pipeline holding {spec['init']['model']}")
    else:
        with torch.no_grad():
            latents = torch.cat([slat_vae["encoder"](voxel_batch(c, int(c.meta["num_frames"])).to(run.device))[1].feats
                                 for c in data.clips])  # fmt: skip
        mean, std = latents.mean(0), latents.std(0).clamp_min(1e-4)
    torch.manual_seed(run.seed + 3)
    slat_flow = _component(spec, "model", SLatFlow4D).to(run.device)
    if mean.shape[0] != slat_flow.config.in_channels:
        raise ConfigError(f"stages.slat_flow: the latent normalization has {mean.shape[0]} channels, the flow "
                          f"takes {slat_flow.config.in_channels}")  # fmt: skip
    schedule = spec.get("frame_schedule", [[0, 4]])

    @functools.cache
    def clip_slat(i: int, frames: int) -> SparseTensor:  # the frozen SLat encoder's means, once per clip/length
        with torch.no_grad():
            return slat_vae["encoder"](voxel_batch(data.clips[i], frames).to(run.device))[1]

    def slat_batch(g: torch.Generator, step: int):
        frames = frames_at(schedule, step)
        i = data.pick_indices(g, 1)[0]
        cond = random_black_masks(clips.frames(i, frames)[None], g, p=spec.get("mask_prob", 0.5))
        return _to((clip_slat(i, frames), cond), run.device)

    def flow_loss(m, b, g):
        return slat_flow_loss(m, cond_encoder, b[0], b[1], g, mean=mean, std=std)

    _finish(_trainer(slat_flow, slat_batch, flow_loss, spec, run.out / "slat_flow", run.seed), run.progress)
    _save_final(run.out / "slat_flow", {"model": slat_flow})
    return slat_flow, mean, std


def assemble_pipeline(
    run: RunContext,
    config: dict,
    *,
    cond_encoder: torch.nn.Module,
    structure_decoder: torch.nn.Module,
    structure_flow: StructureFlow4D,
    slat_flow: SLatFlow4D,
    slat_decoder: GaussianDecoder4D,
    slat_mean: torch.Tensor,
    slat_std: torch.Tensor,
) -> Path:
    """Stage 6: the trained networks, the latent statistics and the samplers as ``<out>/pipeline`` (rank 0)."""
    ss_sampler, ss_scheduler = legacy_sampler(config.get("structure_sampler"), SamplerParams())
    slat_sampler, slat_scheduler = legacy_sampler(config.get("slat_sampler"), SamplerParams())
    pipe = SS4DPipeline(
        condition_encoder=cond_encoder,
        structure_decoder=structure_decoder,
        structure_flow=structure_flow,
        slat_flow=slat_flow,
        slat_decoder=slat_decoder,
        slat_mean=slat_mean.tolist(),
        slat_std=slat_std.tolist(),
        structure_sampler=ss_sampler,
        slat_sampler=slat_sampler,
        structure_scheduler=ss_scheduler,
        slat_scheduler=slat_scheduler,
    )
    st = config["stages"]
    pipe.trained_frames = max(n for s in ("structure_flow", "slat_flow")
                              for _, n in st[s].get("frame_schedule", [[0, 4]]))  # fmt: skip
    folder = run.out / "pipeline"
    if _is_main():
        pipe.save_pretrained(folder, overwrite=True)
    _barrier()
    return folder
