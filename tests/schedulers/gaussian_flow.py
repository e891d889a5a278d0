"""A flow with a closed-form velocity and a closed-form solution: data ~ N(mu, sd^2) per dimension.

For ``x_t = (1 - t) x_0 + (sm + (1 - sm) t) eps`` the marginal at ``t`` is ``N(a mu, a^2 sd^2 + b^2)`` (``a = 1 - t``,
``b = sm + (1 - sm) t``), the exact CFM velocity is ``E[(1 - sm) eps - x_0 | x_t]``, and its ODE maps the noise
``x_1`` to ``mu + sqrt(sd^2 + sm^2) x_1``: every scheduler's error against that is measurable exactly.
"""

import math

import torch

from ss4d.pipelines.denoise import denoise

MU, SD, SM = 2.0, 0.5, 1e-5


def exact_velocity(x: torch.Tensor, t: float, cond: object = None) -> torch.Tensor:
    a, b = 1 - t, SM + (1 - SM) * t
    var = a * a * SD * SD + b * b
    e_x0 = MU + a * SD * SD * (x - a * MU) / var
    e_eps = b * (x - a * MU) / var
    return (1 - SM) * e_eps - e_x0


def noise(n: int = 64) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def solve_error(scheduler, steps: int) -> float:
    """Max error of the sampled ``x_0`` against the exact ODE solution."""
    x1 = noise()
    got = denoise(exact_velocity, x1, None, scheduler=scheduler, num_inference_steps=steps)
    return float((got - (MU + math.sqrt(SD * SD + SM * SM) * x1)).abs().max())


def observed_order(scheduler, steps: tuple[int, ...] = (8, 16, 32)) -> list[float]:
    """``log2(e(N) / e(2N))`` for consecutive doublings: about 1 for a first-order solver, 2 for second order."""
    errors = [solve_error(scheduler, n) for n in steps]
    return [math.log2(a / b) for a, b in zip(errors, errors[1:], strict=False)]
