import pytest
import torch

from ss4d.errors import BackendUnavailableError
from ss4d.eval.lpips import load_lpips, lpips_if_available


def test_lpips_from_weight_files(weight_files):
    vgg_path, lin_path, vgg, linear = weight_files
    metric = load_lpips(vgg_path, lin_path)
    torch.testing.assert_close(metric.features[28].weight, vgg["features.28.weight"])
    torch.testing.assert_close(metric.lins[2].weight, linear["lin2.model.1.weight"])
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 40, 40, generator=g), torch.rand(2, 3, 40, 40, generator=g)
    d = metric(a, b)
    assert d.shape == (2,) and bool((d > 0).all())
    assert float(metric(a, a).abs().max()) < 1e-6
    torch.testing.assert_close(metric(a, b), metric(b, a))
    nudged = (a + 0.02 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    assert bool((metric(a, nudged) < metric(a, b)).all())  # a slightly perturbed copy is closer than another image
    x = a.clone().requires_grad_(True)
    metric(x, b).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        metric(a[:, :1], b[:, :1])


def test_missing_weights_say_how_to_get_them(tmp_path, weight_files):
    vgg_path, lin_path, *_ = weight_files
    with pytest.raises(BackendUnavailableError, match="IMAGENET1K_V1"):
        load_lpips(tmp_path / "none.pth", lin_path)
    with pytest.raises(BackendUnavailableError, match="pip install --no-deps lpips"):
        load_lpips(vgg_path, tmp_path / "none.pth")
    metric, why = lpips_if_available(tmp_path / "none.pth", lin_path)
    assert metric is None and "VGG16" in why
