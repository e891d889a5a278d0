"""Classifier-free guidance inside a time interval (the official sampler's ``cfg_strength`` / ``cfg_interval``)."""

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

__all__ = ["ClassifierFreeGuidance"]


@dataclass(frozen=True)
class ClassifierFreeGuidance:
    """``(1 + scale) v(cond) - scale v(uncond)`` for ``interval[0] <= t <= interval[1]``, else ``v(cond)``.

    ``scale = 0`` switches guidance off (one model evaluation per step). TRELLIS/SS4D use 7.5 (structure) and
    3.0 (SLat) within ``(0.5, 1.0)``.

    Raises:
        ValueError: a non-finite scale, or an interval outside ``0 <= lo <= hi <= 1``.
    """

    scale: float = 0.0
    interval: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale):
            raise ValueError(f"the guidance scale must be finite, got {self.scale}")
        lo, hi = (float(v) for v in self.interval)
        if not (0 <= lo <= hi <= 1):
            raise ValueError(f"the guidance interval must satisfy 0 <= lo <= hi <= 1, got {self.interval}")
        object.__setattr__(self, "interval", (lo, hi))

    def active(self, t: float) -> bool:
        """Whether guidance applies at time ``t`` (so the unconditional model must run)."""
        return self.scale != 0 and self.interval[0] <= t <= self.interval[1]

    def combine(self, v_cond: Tensor, v_uncond: Tensor) -> Tensor:
        return (1 + self.scale) * v_cond - self.scale * v_uncond

    def __call__(self, model: Callable[[Tensor, float, object], Tensor], x: Tensor, t: float, cond: object,
                 neg_cond: object) -> Tensor:  # fmt: skip
        """The guided velocity of ``model(x, t, cond)`` at ``(x, t)``."""
        v = model(x, t, cond)
        return self.combine(v, model(x, t, neg_cond)) if self.active(t) else v
