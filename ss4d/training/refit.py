"""Recover the encoders a pipeline folder lacks: fit a fresh structure VAE encoder and a fresh SLat encoder
against the pipeline's own **frozen** decoders, on training clips.

A pipeline folder holds only what generation needs (the decoders), so the encoders that made a model's training
latents are not in it. Fine-tuning its flows, or measuring its VAEs' reconstruction ceilings
(``ss4d eval --structure-encoder --slat-encoder``), needs encoders that produce latents its decoders decode.
Fitting them with the decoders frozen gives exactly that (the original encoders' latent *statistics* are not
recovered: a flow fine-tuned on refit latents re-learns their distribution, and the pipeline's SLat
normalisation should be recomputed from them).

Losses are the recipes' own (:func:`~ss4d.training.losses.structure_vae_loss`,
:func:`~ss4d.training.recipes.slat_vae_loss`); runs resume exactly like any stage (``<out>/<name>/checkpoints``)
and write ``<out>/<name>/final/encoder`` (plus ``final/vae`` for the structure VAE: the refit encoder with the
pipeline's decoder, a ``structure_vae`` stage's ``init.model``; see ``configs/ss4d-tiny-round3.json``)::

    python -m ss4d.training.refit checkpoints/ss4d-tiny --data data/synth-train --out runs/refit \\
        --structure-steps 300 --slat-steps 300
"""

import argparse
from pathlib import Path

import torch

from ss4d.models import SLatEncoder4D, SLatEncoder4DConfig, SparseStructureEncoder, SparseStructureVAE
from ss4d.pipelines import SS4DPipeline
from ss4d.training.core import TrainConfig, Trainer
from ss4d.training.data import ClipDataset, slat_vae_batch, structure_batch
from ss4d.training.losses import structure_vae_loss
from ss4d.training.recipes import slat_vae_loss

__all__ = ["refit_slat_encoder", "refit_structure_encoder"]


def _fit(model: torch.nn.Module, batch_fn, loss_fn, config: TrainConfig, out: Path, progress: bool) -> None:
    trainer = Trainer(model, batch_fn, loss_fn, config, out)
    trainer.resume()
    trainer.train(progress=progress)
    model.load_state_dict(trainer.ema_state_dict())  # EMA of the trained (encoder) weights
    trainer.plot()


def refit_structure_encoder(
    pipe: SS4DPipeline, data: ClipDataset, out: str | Path, config: TrainConfig, *, batch_size: int = 4,
    frames: int = 4, progress: bool = False,
) -> SparseStructureEncoder:  # fmt: skip
    """A fresh :class:`SparseStructureEncoder` trained (dice + KL) through ``pipe.structure_decoder``, frozen."""
    out = Path(out)
    torch.manual_seed(config.seed)
    decoder = pipe.structure_decoder
    vae = SparseStructureVAE.from_parts(SparseStructureEncoder(decoder.config), decoder)
    vae.decoder.requires_grad_(False)
    _fit(vae, lambda g, s: structure_batch(data, g, batch_size, frames), structure_vae_loss, config, out, progress)
    vae.encoder.save_pretrained(out / "final" / "encoder")
    vae.save_pretrained(out / "final" / "vae")  # encoder + the pipeline's decoder: a structure_vae `init.model`
    return vae.encoder.eval()


def refit_slat_encoder(pipe: SS4DPipeline, data: ClipDataset, out: str | Path, config: TrainConfig, *,
                       frames: int = 4, progress: bool = False) -> SLatEncoder4D:  # fmt: skip
    """A fresh :class:`SLatEncoder4D` (the decoder's transformer shape, the data's feature width) trained with
    the SLat VAE's render loss through ``pipe.slat_decoder``, frozen."""
    out = Path(out)
    torch.manual_seed(config.seed)
    d = pipe.slat_decoder.config
    shape = {k: getattr(d, k) for k in ("resolution", "model_channels", "latent_channels", "num_blocks", "num_heads",
                                        "num_head_channels", "mlp_ratio", "temporal", "window", "window_xyz",
                                        "rope_base", "qk_rms_norm")}  # fmt: skip
    encoder = SLatEncoder4D(SLatEncoder4DConfig(in_channels=int(data.clips[0].features.shape[1]), **shape))
    model = torch.nn.ModuleDict({"encoder": encoder, "decoder": pipe.slat_decoder})
    model["decoder"].requires_grad_(False)

    def loss(m, b, g):
        return slat_vae_loss(m["encoder"], m["decoder"], b, g)

    _fit(model, lambda g, s: slat_vae_batch(data, g, frames), loss, config, out, progress)
    encoder.save_pretrained(out / "final" / "encoder")
    return encoder.eval()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="fit encoders against a pipeline's frozen decoders")
    ap.add_argument("model", help="pipeline folder (e.g. checkpoints/ss4d-tiny)")
    ap.add_argument("--data", required=True, help="training clips (ss4d data synth)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--structure-steps", type=int, default=300)
    ap.add_argument("--slat-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    pipe = SS4DPipeline.from_pretrained(args.model)
    data = ClipDataset(args.data)
    common = {"seed": args.seed, "warmup_steps": 20, "ema_rate": 0.99, "log_every": 10, "ckpt_every": 50}
    if args.structure_steps:
        cfg = TrainConfig(max_steps=args.structure_steps, lr=1e-3, **common)
        refit_structure_encoder(pipe, data, Path(args.out) / "structure_encoder", cfg, progress=not args.quiet)
    if args.slat_steps:
        cfg = TrainConfig(max_steps=args.slat_steps, lr=3e-4, **common)
        refit_slat_encoder(pipe, data, Path(args.out) / "slat_encoder", cfg, progress=not args.quiet)


if __name__ == "__main__":
    main()
