"""Conditional flow matching (rectified flow) scheduler, TRELLIS convention (DESIGN §4, official_facts §5).

``t = 0`` is data, ``t = 1`` is noise: ``x_t = (1 - t) x_0 + (sigma_min + (1 - sigma_min) t) eps`` and the
network predicts the velocity ``v = (1 - sigma_min) eps - x_0``. Sampling takes Euler steps on
``t_i = linspace(1, 0, steps + 1)`` warped by ``rescale_t``: ``t <- r t / (1 + (r - 1) t)``, with
classifier-free guidance ``(1 + s) v(cond) - s v(uncond)`` applied only inside ``cfg_interval``.

``t`` is a float in [0, 1] everywhere here; a network's own time scaling (1000 t) is its config field
``time_scale``, never applied by the scheduler.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["FlowMatchingScheduler", "SampleOutput", "StepOutput"]

VelocityFn = Callable[[Tensor, float, object], Tensor]
"""``model(x_t, t, cond) -> v``: ``t`` a float in [0, 1]; ``cond`` whatever the model takes (None = uncond)."""


@dataclass(frozen=True)
class StepOutput:
    prev_sample: Tensor
    pred_original_sample: Tensor


@dataclass
class SampleOutput:
    samples: Tensor
    trajectory: list[Tensor] = field(default_factory=list)  # x_t after each step (when requested)
    pred_x0: list[Tensor] = field(default_factory=list)


@dataclass
class FlowMatchingScheduler:
    """Rectified-flow scheduler with a diffusers-like interface.

    Training: :meth:`sample_timesteps` (logit-normal), :meth:`add_noise`, :meth:`velocity_target`.
    Sampling: :meth:`set_timesteps` then :meth:`step` per pair, or :meth:`sample` for the whole loop.
    """

    sigma_min: float = 1e-5
    timesteps: list[float] = field(default_factory=list)

    # --- training -----------------------------------------------------------------------------------
    def sigma(self, t: Tensor | float) -> Tensor | float:
        return self.sigma_min + (1 - self.sigma_min) * t

    def add_noise(self, x0: Tensor, eps: Tensor, t: Float[Tensor, " b"]) -> Tensor:
        """``x_t`` for per-sample ``t [B]`` broadcast over the remaining dims of ``x0``."""
        t = t.reshape(-1, *[1] * (x0.ndim - 1)).to(x0.dtype)
        return (1 - t) * x0 + self.sigma(t) * eps

    def velocity_target(self, x0: Tensor, eps: Tensor) -> Tensor:
        return (1 - self.sigma_min) * eps - x0

    @staticmethod
    def sample_timesteps(
        n: int, *, mean: float = 1.0, std: float = 1.0, generator: torch.Generator | None = None, device=None
    ) -> Float[Tensor, " n"]:
        """Logit-normal ``sigmoid(N(mean, std))`` training timesteps (TRELLIS: mean 1, std 1)."""
        return torch.sigmoid(torch.randn(n, generator=generator, device=device) * std + mean)

    # --- sampling -----------------------------------------------------------------------------------
    @staticmethod
    def schedule(num_steps: int, rescale_t: float = 1.0) -> list[float]:
        """``num_steps + 1`` times from 1 to 0 (float64), warped by ``rescale_t``."""
        if num_steps < 1:
            raise ValueError(f"`num_steps` must be >= 1, got {num_steps}")
        if rescale_t <= 0:
            raise ValueError(f"`rescale_t` must be > 0, got {rescale_t}")
        ts = [1 - i / num_steps for i in range(num_steps + 1)]
        return [rescale_t * t / (1 + (rescale_t - 1) * t) for t in ts]

    def set_timesteps(self, num_steps: int, rescale_t: float = 1.0) -> None:
        self.timesteps = self.schedule(num_steps, rescale_t)

    def pairs(self) -> Iterator[tuple[float, float]]:
        if not self.timesteps:
            raise RuntimeError("call set_timesteps(num_steps, rescale_t) first")
        return zip(self.timesteps[:-1], self.timesteps[1:], strict=True)

    def pred_x0(self, x_t: Tensor, t: float, v: Tensor) -> Tensor:
        return (1 - self.sigma_min) * x_t - self.sigma(t) * v

    def step(self, v: Tensor, t: float, t_prev: float, x_t: Tensor) -> StepOutput:
        """One Euler step ``x_{t_prev} = x_t - (t - t_prev) v`` and the ``x_0`` estimate."""
        return StepOutput(x_t - (t - t_prev) * v, self.pred_x0(x_t, t, v))

    @staticmethod
    def guided_velocity(
        model: VelocityFn,
        x_t: Tensor,
        t: float,
        cond: object,
        neg_cond: object,
        cfg_strength: float,
        cfg_interval: tuple[float, float],
    ) -> Tensor:
        """``(1 + s) v(cond) - s v(neg_cond)`` inside ``cfg_interval`` (inclusive), else ``v(cond)``."""
        v = model(x_t, t, cond)
        if cfg_strength == 0 or not (cfg_interval[0] <= t <= cfg_interval[1]):
            return v
        return (1 + cfg_strength) * v - cfg_strength * model(x_t, t, neg_cond)

    def sample(
        self,
        model: VelocityFn,
        noise: Tensor,
        cond: object,
        *,
        neg_cond: object = None,
        num_steps: int = 25,
        rescale_t: float = 1.0,
        cfg_strength: float = 0.0,
        cfg_interval: tuple[float, float] = (0.0, 1.0),
        keep_trajectory: bool = False,
        progress: Callable[[Iterator], Iterator] | None = None,
    ) -> SampleOutput:
        """Integrate from ``noise`` (t = 1) to data (t = 0).

        Raises:
            ValueError: bad steps / rescale / interval, or CFG without ``neg_cond``.
        """
        if cfg_strength and neg_cond is None:
            raise ValueError("classifier-free guidance (cfg_strength != 0) needs `neg_cond`")
        lo, hi = cfg_interval
        if not (0 <= lo <= hi <= 1) or math.isnan(lo + hi):
            raise ValueError(f"`cfg_interval` must satisfy 0 <= lo <= hi <= 1, got {cfg_interval}")
        times = self.schedule(num_steps, rescale_t)
        steps = zip(times[:-1], times[1:], strict=True)
        if progress is not None:
            steps = progress(steps)
        x = noise
        out = SampleOutput(noise)
        for t, t_prev in steps:
            v = self.guided_velocity(model, x, t, cond, neg_cond, cfg_strength, (lo, hi))
            result = self.step(v, t, t_prev, x)
            x = result.prev_sample
            if keep_trajectory:
                out.trajectory.append(x)
                out.pred_x0.append(result.pred_original_sample)
        out.samples = x
        return out
