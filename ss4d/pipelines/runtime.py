"""Run-time choices of a pipeline that never enter its folder: backends, CPU offload, peak memory.

* Backends: ``attn_backend`` / ``sparse_conv_backend`` are applied as scopes
  (:meth:`~ss4d.ops.registry.BackendRegistry.use`) around every stage, so every module built with
  ``"auto"`` (the default of every loaded network) runs the named backend. Names are checked at load.
* Model CPU offload: with :meth:`PipelineRuntime.enable_offload`, entering a stage moves that stage's
  networks to the execution device and every other network to the CPU, so only the active stage's
  networks occupy the accelerator. :attr:`PipelineRuntime.placements` logs each move (for tests and
  debugging).
* Peak memory per stage: on CUDA ``torch.cuda.max_memory_allocated`` after resetting the peak at stage
  entry (bytes); on other devices there is no allocator counter to read and the stage reports ``None``
  (written as ``"n/a"`` in ``summary.json``).
"""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ss4d.ops.attention import attention_backends
from ss4d.ops.sparse import sparse_conv_backends

__all__ = ["STAGE_COMPONENTS", "PipelineRuntime", "stage"]

STAGE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "condition": ("condition_encoder",),
    "structure": ("structure_flow", "structure_decoder"),
    "slat": ("slat_flow",),
    "decode": ("slat_decoder",),
}
"""The networks each stage runs (everything else may sit on the CPU meanwhile)."""


def _move(module: nn.Module, device: torch.device) -> None:
    module.to(device)


@dataclass
class PipelineRuntime:
    attn_backend: str = "auto"
    sparse_conv_backend: str = "auto"
    offload_device: torch.device | None = None  # execution device when CPU offload is on
    peak_memory: dict[str, int | None] = field(default_factory=dict)
    placements: list[tuple[str, str, str]] = field(default_factory=list)  # (stage, component, "accelerator"|"cpu")

    def __post_init__(self) -> None:
        self.set_backends(self.attn_backend, self.sparse_conv_backend)

    def set_backends(self, attn_backend: str | None = None, sparse_conv_backend: str | None = None) -> None:
        """Check and set the backend names (``UnknownBackendError`` lists the known ones)."""
        if attn_backend is not None:
            if attn_backend != "auto":
                attention_backends.get(attn_backend)
            self.attn_backend = attn_backend
        if sparse_conv_backend is not None:
            if sparse_conv_backend != "auto":
                sparse_conv_backends.get(sparse_conv_backend)
            self.sparse_conv_backend = sparse_conv_backend

    def enable_offload(self, device: torch.device | str) -> None:
        self.offload_device = torch.device(device)

    @contextmanager
    def enter(self, pipe: Any, name: str) -> Iterator[None]:
        """Place the networks for stage ``name``, scope the backends, measure the peak memory."""
        if self.offload_device is not None:
            active = STAGE_COMPONENTS[name]
            for component in (c for names in STAGE_COMPONENTS.values() for c in names):
                on = component in active
                _move(getattr(pipe, component), self.offload_device if on else torch.device("cpu"))
                self.placements.append((name, component, "accelerator" if on else "cpu"))
        device = pipe.device
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        with attention_backends.use(self.attn_backend), sparse_conv_backends.use(self.sparse_conv_backend):
            yield
        if cuda:
            torch.cuda.synchronize(device)
        self.peak_memory[name] = torch.cuda.max_memory_allocated(device) if cuda else None


def stage(name: str) -> Callable:
    """Decorate a pipeline stage method: it runs inside ``self.runtime.enter(self, name)``."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with self.runtime.enter(self, name):
                return method(self, *args, **kwargs)

        return run

    return wrap
