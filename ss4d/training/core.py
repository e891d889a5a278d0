"""A small, exact-resume trainer shared by every ss4d network.

* AdamW with linear warm-up, gradient clipping, EMA weights;
* batches are a pure function of ``(seed, step, rank)`` (the ``batch_fn`` gets a fresh generator), so a run
  stopped at any checkpoint and resumed continues **bit-exactly**;
* checkpoints are safetensors (model, EMA, AdamW moments) + JSON (step, scalars): no pickle;
* losses are logged to ``log.csv`` (and ``loss.png`` on :meth:`Trainer.plot`);
* under ``torch.distributed`` (e.g. ``torchrun``) the model is wrapped in DDP and each rank draws its own
  batches; rank 0 writes files;
* mixed precision (``amp="bf16" | "fp16"``): the forward and loss run under ``torch.autocast`` on the model's
  device with fp32 master weights; fp16 adds dynamic loss scaling (its state is checkpointed too).
"""

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from ss4d.models.base import atomic_write

__all__ = ["TrainConfig", "Trainer"]

BatchFn = Callable[[torch.Generator, int], Any]
LossFn = Callable[[nn.Module, Any, torch.Generator], tuple[torch.Tensor, dict[str, float | int]]]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    max_steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_rate: float = 0.999
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    amp: str | None = None  # None (full precision), "bf16" or "fp16"

    def __post_init__(self) -> None:
        if self.max_steps < 0 or self.lr <= 0 or not 0 <= self.ema_rate < 1 or self.warmup_steps < 0:
            raise ValueError(f"bad training config: {self}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"`amp` must be null, 'bf16' or 'fp16', got {self.amp!r}")


class _Objective(nn.Module):
    """``loss_fn(model, batch, generator)`` as a module's forward, so DDP sees the whole loss computation
    (loss functions reach into sub-networks, e.g. ``model["encoder"]``, which DDP's own forward would miss)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float | int]]:
        return self.loss_fn(self.model, batch, generator)


class Trainer:
    """Train ``model`` on ``batch_fn(generator, step)`` with ``loss_fn(model, batch, generator)``."""

    def __init__(self, model: nn.Module, batch_fn: BatchFn, loss_fn: LossFn, config: TrainConfig, out_dir: str | Path):
        self.model, self.batch_fn, self.config = model, batch_fn, config
        self.out_dir = Path(out_dir)
        self.rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.world = (
            dist.get_world_size() if self.rank is not None and dist.is_available() and dist.is_initialized() else 1
        )
        objective = _Objective(model, loss_fn)
        self.net = nn.parallel.DistributedDataParallel(objective) if self.world > 1 else objective
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.AdamW(self.params.values(), lr=config.lr, weight_decay=config.weight_decay)
        self.ema = {n: p.detach().clone() for n, p in self.params.items()}
        self.step = 0
        self.device_type = next(model.parameters()).device.type
        self.scaler = torch.amp.GradScaler(self.device_type) if config.amp == "fp16" else None

    # --- checkpoints --------------------------------------------------------------------------------
    def save(self) -> Path:
        folder = self.out_dir / "checkpoints" / f"step_{self.step:07d}"
        if self.rank != 0:
            return folder
        model_state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        ema = {k: v.contiguous().cpu() for k, v in self.ema.items()}
        opt: dict[str, torch.Tensor] = {}
        steps: dict[str, float | int] = {}
        for name, p in self.params.items():
            st = self.optimizer.state.get(p)
            if st:
                opt[f"{name}.exp_avg"] = st["exp_avg"].contiguous().cpu()
                opt[f"{name}.exp_avg_sq"] = st["exp_avg_sq"].contiguous().cpu()
                steps[name] = float(st["step"])
        for fname, tensors in (("model", model_state), ("ema", ema), ("optimizer", opt)):
            atomic_write(folder / f"{fname}.safetensors", lambda p, t=tensors: save_file(t, str(p)))
        meta = {"step": self.step, "config": asdict(self.config), "adam_steps": steps, "world_size": self.world}
        if self.scaler is not None:
            meta["grad_scaler"] = self.scaler.state_dict()
        atomic_write(folder / "state.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
        atomic_write(self.out_dir / "checkpoints" / "latest", lambda p: p.write_text(folder.name))
        return folder

    def resume(self, folder: str | Path | None = None) -> bool:
        """Load a checkpoint (default: the latest under ``out_dir``); False when there is none."""
        if folder is None:
            latest = self.out_dir / "checkpoints" / "latest"
            if not latest.is_file():
                return False
            folder = latest.parent / latest.read_text().strip()
        folder = Path(folder)
        meta = json.loads((folder / "state.json").read_text())
        self.model.load_state_dict(load_file(str(folder / "model.safetensors")))
        ema = load_file(str(folder / "ema.safetensors"))
        opt = load_file(str(folder / "optimizer.safetensors"))
        device = next(self.model.parameters()).device
        for name, p in self.params.items():
            self.ema[name] = ema[name].to(device)
            if f"{name}.exp_avg" in opt:
                self.optimizer.state[p] = {
                    "step": torch.tensor(meta["adam_steps"][name]),
                    "exp_avg": opt[f"{name}.exp_avg"].to(device),
                    "exp_avg_sq": opt[f"{name}.exp_avg_sq"].to(device),
                }
        if self.scaler is not None and "grad_scaler" in meta:
            self.scaler.load_state_dict(meta["grad_scaler"])
        self.step = int(meta["step"])
        return True

    # --- training -----------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        warm = self.config.warmup_steps
        return self.config.lr * min(1.0, (step + 1) / warm) if warm else self.config.lr

    def generator(self, step: int, salt: int = 0) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(hash((self.config.seed, step, self.rank, salt)) % (2**63))
        return g

    def train_step(self) -> dict[str, float | int]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        batch = self.batch_fn(self.generator(self.step, 0), self.step)
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.amp or "")
        with torch.autocast(self.device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss, logs = self.net(batch, self.generator(self.step, 1))
        loss = loss.float()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {float(loss)} at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.config.grad_clip))
            self.optimizer.step()
        else:  # fp16: scaled backward; a step with inf/nan gradients is skipped and the scale lowered
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.config.grad_clip))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        with torch.no_grad():
            for name, p in self.params.items():
                self.ema[name].lerp_(p.detach(), 1 - self.config.ema_rate)
        self.step += 1
        return {
            "step": self.step,
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "lr": self.lr_at(self.step - 1),
            **logs,
        }

    def train(self, *, until: int | None = None, progress: bool = False) -> list[dict[str, float | int]]:
        """Train to ``until`` (default ``max_steps``), logging and checkpointing on the way."""
        until = self.config.max_steps if until is None else until
        history = []
        start = time.perf_counter()
        while self.step < until:
            row = self.train_step()
            row["elapsed_s"] = time.perf_counter() - start
            history.append(row)
            if self.step % self.config.log_every == 0 or self.step == until:
                self._log(row)
                if progress and self.rank == 0:
                    print(f"step {self.step}: loss {row['loss']:.4f}")
            if self.step % self.config.ckpt_every == 0 or self.step == until:
                self.save()
        return history

    def _log(self, row: dict[str, float | int]) -> None:
        if self.rank != 0:
            return
        path = self.out_dir / "log.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(
                {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()}
            )

    def ema_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's state dict with EMA weights in place of the trained parameters."""
        state = dict(self.model.state_dict())
        state.update({k: v.clone() for k, v in self.ema.items()})
        return state

    def plot(self) -> Path | None:
        """Loss curve ``loss.png`` from ``log.csv`` (needs matplotlib)."""
        path = self.out_dir / "log.csv"
        if self.rank != 0 or not path.exists():
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows])
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        out = self.out_dir / "loss.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out
