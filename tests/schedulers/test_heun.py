import pytest
import torch

from ss4d.schedulers import FlowMatchEulerScheduler, FlowMatchHeunScheduler

from .gaussian_flow import observed_order, solve_error


def test_timesteps_repeat_the_inner_times():
    s = FlowMatchHeunScheduler()
    s.set_timesteps(3)
    g = s.sigmas.tolist()
    assert s.timesteps.tolist() == [g[0], g[1], g[1], g[2], g[2]] and s.order == 2


def test_one_interval_is_the_trapezoid_rule():
    """For a constant-in-x field v(t), Heun integrates a linear v(t) exactly."""
    s = FlowMatchHeunScheduler()
    s.set_timesteps(2)  # grid 1, 0.5, 0: predictor + corrector on [1, 0.5], Euler on [0.5, 0]
    x = torch.zeros(1)
    field = lambda t: torch.full((1,), 3.0 * t)  # dx/dt = 3t -> x(0.5) - x(1) = -(3/2)(1 - 0.25)
    x_pred = s.step(field(1.0), 1.0, x).prev_sample
    x_half = s.step(field(0.5), 0.5, x_pred).prev_sample
    torch.testing.assert_close(x_half, torch.full((1,), -1.125))
    x_end = s.step(field(0.5), 0.5, x_half).prev_sample  # Euler: -0.5 * 1.5
    torch.testing.assert_close(x_end, x_half - 0.75)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_second_order_on_a_closed_form_flow(shift):
    orders = observed_order(FlowMatchHeunScheduler(shift=shift))
    assert all(1.7 < p < 2.4 for p in orders), orders
    assert solve_error(FlowMatchHeunScheduler(shift=shift), 16) < solve_error(FlowMatchEulerScheduler(shift=shift), 16)
