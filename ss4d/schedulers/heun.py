"""Heun (explicit trapezoid): two model evaluations per step, second order."""

from torch import Tensor

from ss4d.schedulers.base import FlowMatchScheduler, SchedulerOutput, register_scheduler

__all__ = ["FlowMatchHeunScheduler"]


@register_scheduler
class FlowMatchHeunScheduler(FlowMatchScheduler):
    """Predictor (Euler to ``t_{i+1}``) then corrector (average of the two velocities), as diffusers'
    ``FlowMatchHeunDiscreteScheduler``: ``timesteps`` is ``[t_0, t_1, t_1, ..., t_{N-1}, t_{N-1}]`` (``2N - 1``
    evaluations); the last interval, which ends at ``t = 0``, is a plain Euler step.
    """

    order = 2

    def _timesteps_for(self, grid: list[float]) -> list[float]:
        return grid[:1] + [t for t in grid[1:-1] for _ in range(2)]

    def _reset_state(self) -> None:
        self._interval = 0  # the grid interval [t_k, t_{k+1}] being integrated
        self._first: tuple[Tensor, Tensor] | None = None  # (x_{t_k}, v at it) between predictor and corrector

    def step(
        self, model_output: Tensor, timestep: Tensor | float, sample: Tensor, *, return_dict: bool = True
    ) -> SchedulerOutput | tuple[Tensor, Tensor]:
        self._begin_step(timestep)
        k = self._interval
        t, t_next = float(self.sigmas[k]), float(self.sigmas[k + 1])
        if self._first is None:  # predictor at t_k
            x0 = self.pred_original_sample(sample, t, model_output)
            prev = sample + (t_next - t) * model_output
            if t_next == 0:  # the last interval: Euler
                self._interval += 1
            else:
                self._first = (sample, model_output)
            return self._out(prev, x0, return_dict)
        x_k, v_k = self._first  # corrector: model_output is v at the predicted x_{t_{k+1}}
        v = (v_k + model_output) / 2
        self._first, self._interval = None, k + 1
        return self._out(x_k + (t_next - t) * v, self.pred_original_sample(x_k, t, v), return_dict)
