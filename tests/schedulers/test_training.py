import torch

from ss4d.schedulers import logit_normal_timesteps


def test_logit_normal_timesteps():
    ts = logit_normal_timesteps(20000, generator=torch.Generator().manual_seed(0))
    assert float(ts.min()) > 0 and float(ts.max()) < 1
    assert abs(float(torch.logit(ts).mean()) - 1.0) < 0.05 and abs(float(torch.logit(ts).std()) - 1.0) < 0.05
    shifted = logit_normal_timesteps(20000, mean=-1.0, std=0.5, generator=torch.Generator().manual_seed(0))
    assert abs(float(torch.logit(shifted).mean()) + 1.0) < 0.05 and abs(float(torch.logit(shifted).std()) - 0.5) < 0.05
