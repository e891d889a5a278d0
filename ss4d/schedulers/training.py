"""Training-time timestep sampling (the targets are :meth:`FlowMatchScheduler.add_noise` / ``velocity_target``)."""

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["logit_normal_timesteps"]


def logit_normal_timesteps(
    n: int, *, mean: float = 1.0, std: float = 1.0, generator: torch.Generator | None = None, device=None
) -> Float[Tensor, " n"]:
    """``sigmoid(N(mean, std))`` training times (TRELLIS: mean 1, std 1, so t leans towards noise)."""
    return torch.sigmoid(torch.randn(n, generator=generator, device=device) * std + mean)
