"""Euler: one model evaluation per step, first order (TRELLIS's and SS4D's released sampler)."""

from torch import Tensor

from ss4d.schedulers.base import FlowMatchScheduler, SchedulerOutput, register_scheduler

__all__ = ["FlowMatchEulerScheduler"]


@register_scheduler
class FlowMatchEulerScheduler(FlowMatchScheduler):
    """``x_{t_{i+1}} = x_{t_i} - (t_i - t_{i+1}) v(x_{t_i}, t_i)`` on the shifted grid.

    With ``shift = rescale_t`` this is the official ``FlowEulerSampler`` step for step (same float64 times, same
    arithmetic), so its samples match the official sampler fixtures and ss4d's earlier outputs bit for bit.
    """

    order = 1

    def step(
        self, model_output: Tensor, timestep: Tensor | float, sample: Tensor, *, return_dict: bool = True
    ) -> SchedulerOutput | tuple[Tensor, Tensor]:
        i = self._begin_step(timestep)
        t, t_next = float(self.sigmas[i]), float(self.sigmas[i + 1])
        prev = sample - (t - t_next) * model_output
        return self._out(prev, self.pred_original_sample(sample, t, model_output), return_dict)
