"""Profile one training step of each ss4d-tiny stage (cProfile), with the networks of configs/ss4d-tiny.json.

Per stage: CPU seconds per step (``time.process_time``: this process's own CPU time, which other jobs on a
shared machine do not inflate, unlike wall time) and wall seconds per step over ``--steps`` steps after one
warm-up step, then the functions with the largest cumulative time. Weights are random (a step's cost does
not depend on them); batches are the real ones (clips from ``--data``). One torch thread. ``slat_flow_uncached``
is the SLat flow step as it was before `ss4d train` cached the frozen SLat encoder's latents per clip (the
encoder ran on every step); ``slat_flow`` is the step now.

    python benchmarks/profile_training.py --data data/synth-train [--steps 5] [--stages slat_flow] [--top 12]
"""

import argparse
import cProfile
import functools
import io
import json
import pstats
import time
from pathlib import Path

import torch

from ss4d.models import (
    GaussianDecoder4D,
    SLatEncoder4D,
    SLatFlow4D,
    SparseStructureVAE,
    StructureFlow4D,
    TinyImageEncoder,
)
from ss4d.ops.sparse import SparseTensor
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
from ss4d.training.recipes import slat_flow_loss, slat_vae_loss, structure_flow_loss

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ss4d-tiny.json"


def _build(cls, spec: dict, key: str, **defaults):
    return cls(cls.config_class.from_dict({**defaults, **spec[key]}))


def stage_trainers(data: ClipDataset, out: Path, frames: int) -> dict[str, Trainer]:
    """A Trainer per stage, as `ss4d train` builds them (random weights, the configs' batch shapes)."""
    st = json.loads(CONFIG.read_text())["stages"]
    size = 64
    cfg = TrainConfig(max_steps=10**6, warmup_steps=0, log_every=10**6, ckpt_every=10**6)
    vae = _build(SparseStructureVAE, st["structure_vae"], "model")
    slat = torch.nn.ModuleDict({"encoder": _build(SLatEncoder4D, st["slat_vae"], "encoder"),
                                "decoder": _build(GaussianDecoder4D, st["slat_vae"], "decoder")})  # fmt: skip
    cond = _build(TinyImageEncoder, st["structure_flow"], "cond_encoder", image_size=size).requires_grad_(False)
    sflow = _build(StructureFlow4D, st["structure_flow"], "model")
    lflow = _build(SLatFlow4D, st["slat_flow"], "model")

    @functools.cache
    def frames_of(i: int) -> torch.Tensor:
        return condition_frames(data.clips[i], frames, size)

    @functools.cache
    def latents_of(i: int) -> torch.Tensor:
        with torch.no_grad():
            return vae.encoder(occupancy_grid(data.clips[i], frames)[None])[1][0]

    def flow_batch(g, s):
        idx = data.pick_indices(g, st["structure_flow"].get("batch_size", 2))
        return (torch.stack([latents_of(i) for i in idx]),
                random_black_masks(torch.stack([frames_of(i) for i in idx]), g))  # fmt: skip

    def slat_batch(g, s):
        i = data.pick_indices(g, 1)[0]
        return voxel_batch(data.clips[i], frames), random_black_masks(frames_of(i)[None], g)

    C = slat["encoder"].config.latent_channels
    zero, one = torch.zeros(C), torch.ones(C)
    frozen_encoder = slat["encoder"]

    def vae_loss(m, b, g):
        return slat_vae_loss(m["encoder"], m["decoder"], b, g)

    def sflow_loss(m, b, g):
        return structure_flow_loss(m, cond, b[0], b[1], g)

    @functools.cache
    def slat_of(i: int) -> SparseTensor:  # `ss4d train` caches the frozen encoder's latents per clip
        with torch.no_grad():
            return frozen_encoder(voxel_batch(data.clips[i], frames))[1]

    def lflow_batch(g, s):
        i = data.pick_indices(g, 1)[0]
        return slat_of(i), random_black_masks(frames_of(i)[None], g)

    def lflow_loss(m, b, g):
        return slat_flow_loss(m, cond, b[0], b[1], g, mean=zero, std=one)

    def lflow_loss_uncached(m, b, g):  # before: the frozen encoder ran on every step
        with torch.no_grad():
            latents = frozen_encoder(b[0])[1]
        return slat_flow_loss(m, cond, latents, b[1], g, mean=zero, std=one)

    return {
        "structure_vae": Trainer(vae, lambda g, s: structure_batch(data, g, 4, 4), structure_vae_loss, cfg, out / "a"),
        "slat_vae": Trainer(slat, lambda g, s: slat_vae_batch(data, g, 4), vae_loss, cfg, out / "b"),
        "structure_flow": Trainer(sflow, flow_batch, sflow_loss, cfg, out / "c"),
        "slat_flow_uncached": Trainer(lflow, slat_batch, lflow_loss_uncached, cfg, out / "d0"),
        "slat_flow": Trainer(lflow, lflow_batch, lflow_loss, cfg, out / "d"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/synth-train")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8, help="frames per clip for the flows (the first schedule phase)")
    ap.add_argument("--stages", nargs="+")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", default="/tmp/ss4d-profile")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = ClipDataset(args.data, limit=args.limit)
    trainers = stage_trainers(data, Path(args.out), args.frames)
    print("| stage | CPU s / step | wall s / step |\n|---|---|---|")
    reports = []
    for name, trainer in trainers.items():
        if args.stages and name not in args.stages:
            continue
        trainer.train_step()  # warm-up: caches, kernel maps, allocator
        prof = cProfile.Profile()
        cpu, wall = time.process_time(), time.perf_counter()
        prof.enable()
        for _ in range(args.steps):
            trainer.train_step()
        prof.disable()
        cpu, wall = (time.process_time() - cpu) / args.steps, (time.perf_counter() - wall) / args.steps
        print(f"| {name} | {cpu:.3f} | {wall:.3f} |", flush=True)
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(args.top)
        reports.append(f"## {name}\n{text.getvalue()}")
    print("\n".join(reports))


if __name__ == "__main__":
    main()
