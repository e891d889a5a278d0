"""Flow-matching schedulers with the diffusers scheduler contract, TRELLIS's conditional flow matching path.

``t = 0`` is data, ``t = 1`` is noise: ``x_t = (1 - t) x_0 + (sigma_min + (1 - sigma_min) t) eps``; the network
predicts the velocity ``v = (1 - sigma_min) eps - x_0`` (docs/design.md, "Schedulers and pipelines").

Sampling follows diffusers: :meth:`FlowMatchScheduler.set_timesteps` fills the tensors ``timesteps`` (the
times the model is evaluated at, in loop order) and ``sigmas`` (the grid ``t_0 = 1 > ... > t_N = 0`` warped by
``shift``), then the caller's loop does, for each ``t`` of ``timesteps``::

    sample = scheduler.step(model(sample, t), t, sample).prev_sample

``t`` is a float in [0, 1] everywhere here; a network's own time scaling (1000 t) is its config field, never
applied by a scheduler. Configs are frozen dataclasses saved as ``scheduler_config.json`` (with
``_class_name``); only classes registered with :func:`register_scheduler` load from a folder.
"""

import abc
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.utils.configs import config_kwargs
from ss4d.utils.untrusted import read_json_object

__all__ = [
    "CONFIG_NAME",
    "SCHEDULERS",
    "FlowMatchScheduler",
    "FlowMatchSchedulerConfig",
    "SchedulerOutput",
    "load_scheduler",
    "register_scheduler",
]

CONFIG_NAME = "scheduler_config.json"
S = TypeVar("S", bound="FlowMatchScheduler")


@dataclass(frozen=True, kw_only=True)
class FlowMatchSchedulerConfig:
    """Settings shared by ss4d's flow-matching schedulers.

    Args:
        sigma_min: noise left at ``t = 0`` (TRELLIS: 1e-5).
        shift: time warp ``t <- shift t / (1 + (shift - 1) t)`` of the sampling grid; TRELLIS calls it
            ``rescale_t`` (3.0 in its image-to-3D sampler), diffusers' ``FlowMatchEulerDiscreteScheduler`` ``shift``.
    """

    sigma_min: float = 1e-5
    shift: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.sigma_min < 1:
            raise ValueError(f"`sigma_min` must lie in [0, 1), got {self.sigma_min}")
        if not self.shift > 0:
            raise ValueError(f"`shift` must be > 0, got {self.shift}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FlowMatchSchedulerConfig":
        """Build from a dict; unknown keys raise (``_class_name`` / ``_ss4d_version`` are ignored)."""
        return cls(**config_kwargs(cls, d))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SchedulerOutput:
    """What :meth:`FlowMatchScheduler.step` returns (diffusers' field names)."""

    prev_sample: Tensor  # the sample at the next time of the loop
    pred_original_sample: Tensor  # the x_0 estimate from this step's model output


SCHEDULERS: dict[str, type["FlowMatchScheduler"]] = {}
"""Registered scheduler classes by name: the only ones a saved folder may name."""


def register_scheduler(cls: type[S]) -> type[S]:
    """Class decorator: make a scheduler loadable by name (``_class_name`` in its config / model_index.json).

    Raises:
        ValueError: another class is registered under the same name.
    """
    known = SCHEDULERS.get(cls.__name__)
    if known is not None and known is not cls:
        raise ValueError(f"a scheduler named {cls.__name__!r} is already registered ({known.__module__})")
    SCHEDULERS[cls.__name__] = cls
    return cls


def load_scheduler(folder: str | Path) -> "FlowMatchScheduler":
    """The scheduler saved in ``folder`` (its ``scheduler_config.json`` names a registered class).

    Raises:
        FileNotFoundError: no ``scheduler_config.json``.
        ValueError: unreadable JSON, an unregistered class, or unknown config keys.
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected a folder written by a scheduler's save_pretrained()")
    raw = read_json_object(path, error=ValueError)
    name = raw.get("_class_name")
    if name not in SCHEDULERS:
        raise ValueError(f"{path}: scheduler class {name!r} is not registered; known: {sorted(SCHEDULERS)}")
    return SCHEDULERS[name].from_config(raw)


class FlowMatchScheduler(abc.ABC):
    """Base of the flow-matching schedulers: the CFM path, its training targets, the time grid and persistence.

    Subclasses implement :meth:`_timesteps_for` (the loop's evaluation times for a grid) and :meth:`step`, and set
    ``order`` (model evaluations per step of the grid, as diffusers' ``order``).
    """

    config_class: ClassVar[type[FlowMatchSchedulerConfig]] = FlowMatchSchedulerConfig
    order: ClassVar[int] = 1

    def __init__(self, config: FlowMatchSchedulerConfig | None = None, **kwargs: Any) -> None:
        if config is not None and kwargs:
            raise TypeError("pass either a config or keyword settings, not both")
        self.config = config if config is not None else self.config_class(**kwargs)
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(self.config)}")
        self.sigmas: Float[Tensor, " n1"] = torch.empty(0, dtype=torch.float64)
        self.timesteps: Float[Tensor, " k"] = torch.empty(0, dtype=torch.float64)
        self.num_inference_steps: int | None = None
        self._step_index = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # --- config -------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls: type[S], config: FlowMatchSchedulerConfig | dict[str, Any], **overrides: Any) -> S:
        """A scheduler of this class from a config (dataclass or dict, e.g. another scheduler's ``config``)."""
        d = config.to_dict() if isinstance(config, FlowMatchSchedulerConfig) else dict(config)
        return cls(cls.config_class.from_dict({**d, **overrides}))

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``scheduler_config.json`` into ``folder``; returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        d = {"_class_name": type(self).__name__, **self.config.to_dict()}
        (folder / CONFIG_NAME).write_text(json.dumps(d, indent=2) + "\n")
        return folder

    save_config = save_pretrained

    @classmethod
    def from_pretrained(cls: type[S], folder: str | Path) -> S:
        """Load ``folder/scheduler_config.json``; the class it names must be this one (or a subclass).

        Raises:
            ValueError: the folder holds another scheduler class.
        """
        scheduler = load_scheduler(folder)
        if not isinstance(scheduler, cls):
            raise ValueError(f"{folder} holds a {type(scheduler).__name__}, not a {cls.__name__}")
        return scheduler

    # --- the CFM path (training) --------------------------------------------------------------------
    def sigma(self, t: Tensor | float) -> Tensor | float:
        """The noise scale ``sigma_min + (1 - sigma_min) t`` at time ``t``."""
        return self.config.sigma_min + (1 - self.config.sigma_min) * t

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: Float[Tensor, " b"]) -> Tensor:
        """``x_t`` for per-sample times ``timesteps [B]``, broadcast over the other dims of ``original_samples``."""
        t = timesteps.reshape(-1, *[1] * (original_samples.ndim - 1)).to(original_samples.dtype)
        return (1 - t) * original_samples + self.sigma(t) * noise

    def scale_noise(self, sample: Tensor, timestep: Tensor | float, noise: Tensor) -> Tensor:
        """diffusers' name for noising ``sample`` to one time ``timestep`` (e.g. to start img2img-style)."""
        t = torch.as_tensor(timestep, dtype=sample.dtype, device=sample.device).reshape(-1)
        return self.add_noise(sample, noise, t.expand(sample.shape[0]) if t.numel() == 1 else t)

    def velocity_target(self, original_samples: Tensor, noise: Tensor) -> Tensor:
        """The training target ``d x_t / d t = (1 - sigma_min) noise - x_0``."""
        return (1 - self.config.sigma_min) * noise - original_samples

    def pred_original_sample(self, sample: Tensor, t: float, model_output: Tensor) -> Tensor:
        """The ``x_0`` estimate ``(1 - sigma_min) x_t - sigma(t) v`` of a velocity ``v`` at ``(x_t, t)``."""
        return (1 - self.config.sigma_min) * sample - self.sigma(t) * model_output

    # --- sampling -----------------------------------------------------------------------------------
    def grid(self, num_inference_steps: int) -> list[float]:
        """``num_inference_steps + 1`` times from 1 to 0 (Python floats, i.e. float64), warped by ``shift``."""
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be an int >= 1, got {num_inference_steps!r}")
        r = self.config.shift
        ts = [1 - i / num_inference_steps for i in range(num_inference_steps + 1)]
        return [r * t / (1 + (r - 1) * t) for t in ts]

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """Fill ``sigmas`` (the grid, ``N + 1`` times) and ``timesteps`` (evaluation times in loop order) and
        reset the step counter. Times stay float64 on the CPU unless ``device`` says otherwise (a float32
        device copy would round them; the loop passes ``float(t)`` to the model)."""
        grid = self.grid(num_inference_steps)
        self.num_inference_steps = num_inference_steps
        self.sigmas = torch.tensor(grid, dtype=torch.float64, device=device)
        self.timesteps = torch.tensor(self._timesteps_for(grid), dtype=torch.float64, device=device)
        self._step_index = 0
        self._reset_state()

    def _timesteps_for(self, grid: list[float]) -> list[float]:
        return grid[:-1]

    def _reset_state(self) -> None:  # noqa: B027 - a hook: single-step solvers keep no memory
        """Forget a multistep or multistage solver's memory (called by :meth:`set_timesteps`)."""

    @property
    def step_index(self) -> int:
        """How many :meth:`step` calls since :meth:`set_timesteps`."""
        return self._step_index

    def _begin_step(self, timestep: Tensor | float) -> int:
        """Check ``timestep`` is the loop's next time; return the step index (then advanced)."""
        if self.num_inference_steps is None:
            raise RuntimeError(f"{type(self).__name__}: call set_timesteps(num_inference_steps) before step()")
        i = self._step_index
        if i >= len(self.timesteps):
            raise RuntimeError(f"{type(self).__name__}: all {len(self.timesteps)} steps are done; "
                               "call set_timesteps() again")  # fmt: skip
        expected = float(self.timesteps[i])
        if abs(float(timestep) - expected) > 1e-6:
            raise ValueError(f"step {i} expects timestep {expected}, got {float(timestep)}: pass the times of "
                             "`scheduler.timesteps` in order")  # fmt: skip
        self._step_index = i + 1
        return i

    @abc.abstractmethod
    def step(
        self, model_output: Tensor, timestep: Tensor | float, sample: Tensor, *, return_dict: bool = True
    ) -> SchedulerOutput | tuple[Tensor, Tensor]:
        """Advance ``sample`` by one entry of ``timesteps`` given the model's velocity at it.

        Returns ``SchedulerOutput(prev_sample, pred_original_sample)``, or that pair as a tuple with
        ``return_dict=False``.
        """

    @staticmethod
    def _out(prev: Tensor, x0: Tensor, return_dict: bool) -> SchedulerOutput | tuple[Tensor, Tensor]:
        return SchedulerOutput(prev, x0) if return_dict else (prev, x0)
