"""The CFM loss trains on the path of the scheduler it is given (the sampler's own)."""

import torch

from ss4d.schedulers import FlowMatchEulerScheduler, FlowMatchHeunScheduler, logit_normal_timesteps
from ss4d.training import cfm_loss


def _reference(velocity_fn, x0, seed, batch_size, sigma_min):
    """The loss written out by hand: logit-normal t, x_t on the CFM path, target (1 - sigma_min) eps - x0."""
    g = torch.Generator().manual_seed(seed)
    t = logit_normal_timesteps(batch_size, generator=g)
    eps = torch.randn(x0.shape, generator=g)
    tr = t.repeat_interleave(x0.shape[0] // batch_size).view(-1, 1)
    x_t = (1 - tr) * x0 + (sigma_min + (1 - sigma_min) * tr) * eps
    return (velocity_fn(x_t, t) - ((1 - sigma_min) * eps - x0)).square().mean()


def test_cfm_loss_uses_the_given_scheduler_path():
    x0 = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    fn = lambda x, t: 0.3 * x + t.repeat_interleave(3).view(-1, 1)  # noqa: E731
    default, _ = cfm_loss(fn, x0, torch.Generator().manual_seed(0), batch_size=2)
    torch.testing.assert_close(default, _reference(fn, x0, 0, 2, 1e-5))
    wide = FlowMatchHeunScheduler(sigma_min=0.1)  # any scheduler: the path is shared, the solver does not matter
    loss, logs = cfm_loss(fn, x0, torch.Generator().manual_seed(0), batch_size=2, scheduler=wide)
    torch.testing.assert_close(loss, _reference(fn, x0, 0, 2, 0.1))
    assert not torch.allclose(loss, default) and 0 < logs["t_mean"] < 1
    assert FlowMatchEulerScheduler().config.sigma_min == 1e-5
