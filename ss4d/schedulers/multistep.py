"""Two-step Adams-Bashforth: one model evaluation per step, second order (reuses the previous velocity)."""

from torch import Tensor

from ss4d.schedulers.base import FlowMatchScheduler, SchedulerOutput, register_scheduler

__all__ = ["FlowMatchAB2Scheduler"]


@register_scheduler
class FlowMatchAB2Scheduler(FlowMatchScheduler):
    """Variable-step Adams-Bashforth 2: ``x_{i+1} = x_i + h_i ((1 + r/2) v_i - (r/2) v_{i-1})`` with
    ``h_i = t_{i+1} - t_i`` and ``r = h_i / h_{i-1}``; the first step is Euler.

    Second order at the cost of Euler (one evaluation per step), like diffusers' multistep solvers
    (``order = 1`` there too: ``order`` counts evaluations per step). With guidance switching on or off inside
    the loop, the previous velocity comes from the other regime; that is a first-order error at the switch only.
    """

    order = 1

    def _reset_state(self) -> None:
        self._previous: Tensor | None = None  # v at the previous grid time

    def step(
        self, model_output: Tensor, timestep: Tensor | float, sample: Tensor, *, return_dict: bool = True
    ) -> SchedulerOutput | tuple[Tensor, Tensor]:
        i = self._begin_step(timestep)
        t, t_next = float(self.sigmas[i]), float(self.sigmas[i + 1])
        h = t_next - t
        if self._previous is None:
            v = model_output
        else:
            r = h / (t - float(self.sigmas[i - 1]))
            v = (1 + r / 2) * model_output - (r / 2) * self._previous
        self._previous = model_output
        return self._out(sample + h * v, self.pred_original_sample(sample, t, model_output), return_dict)
