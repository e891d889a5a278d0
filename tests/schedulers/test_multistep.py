import pytest
import torch

from ss4d.schedulers import FlowMatchAB2Scheduler, FlowMatchEulerScheduler

from .gaussian_flow import observed_order, solve_error


def test_first_step_is_euler_then_adams_bashforth():
    s, e = FlowMatchAB2Scheduler(shift=2.0), FlowMatchEulerScheduler(shift=2.0)
    s.set_timesteps(3)
    e.set_timesteps(3)
    x, v0, v1 = torch.randn(4), torch.randn(4), torch.randn(4)
    assert torch.equal(s.step(v0, s.timesteps[0], x).prev_sample, e.step(v0, e.timesteps[0], x).prev_sample)
    t0, t1, t2 = s.sigmas[:3].tolist()
    r = (t2 - t1) / (t1 - t0)
    expected = x + (t2 - t1) * ((1 + r / 2) * v1 - (r / 2) * v0)
    torch.testing.assert_close(s.step(v1, s.timesteps[1], x).prev_sample, expected)


def test_a_linear_field_is_integrated_exactly():
    """AB2 is exact for a velocity linear in t (independent of x)."""
    s = FlowMatchAB2Scheduler(shift=3.0)
    s.set_timesteps(5)
    x = torch.zeros(1, dtype=torch.float64)
    for t in s.timesteps.tolist():
        x = s.step(torch.full((1,), 2.0 * t - 1.0, dtype=torch.float64), t, x).prev_sample
    # x(0) - x(1) = -int_0^1 (2t - 1) dt = 0, but the first Euler step is not exact: compare with its error only
    t0, t1 = s.sigmas[:2].tolist()
    euler_error = (t1 - t0) * (2 * t0 - 1) - ((t1 * t1 - t1) - (t0 * t0 - t0))
    torch.testing.assert_close(x, torch.full((1,), euler_error, dtype=torch.float64))


@pytest.mark.parametrize(("shift", "steps"), [(1.0, (16, 32, 64)), (3.0, (512, 1024, 2048))])
def test_second_order_on_a_closed_form_flow(shift, steps):
    """On the shifted grid the error of AB2 partly cancels at coarse steps (observed orders 2.6 to 4.5 below 256
    steps), so its asymptotic order shows at finer grids."""
    orders = observed_order(FlowMatchAB2Scheduler(shift=shift), steps=steps)
    assert all(1.7 < p < 2.5 for p in orders), orders
    assert solve_error(FlowMatchAB2Scheduler(shift=shift), 16) < solve_error(FlowMatchEulerScheduler(shift=shift), 16)
