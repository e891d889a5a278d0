import pytest
import torch

from ss4d.errors import BackendUnavailableError
from ss4d.eval.lpips import LPIPS, load_lpips, lpips_if_available


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


def _reference_lpips(vgg: dict, linear: dict, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """LPIPS v0.1 written from its documented definition (Zhang et al. 2018, eq. 1, and the `lpips` package's
    README), independently of ss4d's module: inputs in [0, 1] are mapped to [-1, 1] and standardised by the
    package's ScalingLayer (shift [-.030, -.088, -.188], scale [.458, .448, .450]); the VGG16 trunk's
    activations after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 are unit-normalised along channels
    (eps 1e-10); the squared difference is weighted per channel by the layer's linear weights, summed over
    channels, averaged over space and summed over the five layers."""
    import torch.nn.functional as F

    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    convs = sorted({int(k.split(".")[1]) for k in vgg if k.startswith("features.")})
    pools_after = {3, 8, 15, 22}  # torchvision VGG16 "features" indices of the relus followed by max-pooling
    taps = (3, 8, 15, 22, 29)

    def activations(x: torch.Tensor) -> list[torch.Tensor]:
        h, out = (x * 2 - 1 - shift) / scale, []
        for i in convs:
            h = F.relu(F.conv2d(h, vgg[f"features.{i}.weight"], vgg[f"features.{i}.bias"], padding=1))
            if i + 1 in taps:
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            if i + 1 in pools_after:
                h = F.max_pool2d(h, 2, 2)
        return out

    d = torch.zeros(x0.shape[0])
    for k, (f0, f1) in enumerate(zip(activations(x0), activations(x1), strict=True)):
        w = linear[f"lin{k}.model.1.weight"].view(1, -1, 1, 1)
        d = d + (w * (f0 - f1) ** 2).sum(1).mean((1, 2))
    return d


def test_lpips_matches_its_formula_on_fixed_random_weights(tmp_path):
    """Parity with the `lpips` package's formula (reimplemented above from its definition: the package itself
    needs torchvision, which has no wheel for this torch build) on seeded random signed weights (He-scaled so
    that every layer's features stay informative) and random images."""
    g = torch.Generator().manual_seed(3)
    vgg = {}
    for k, v in LPIPS().features.state_dict().items():
        fan_in = v[0].numel() if v.ndim == 4 else 1
        vgg[f"features.{k}"] = torch.randn(v.shape, generator=g) * (2 / fan_in) ** 0.5 * (v.ndim == 4)
    linear = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
              for k, c in enumerate((64, 128, 256, 512, 512))}  # fmt: skip
    torch.save(vgg, tmp_path / "vgg16.pth")
    torch.save(linear, tmp_path / "lin.pth")
    metric = load_lpips(tmp_path / "vgg16.pth", tmp_path / "lin.pth")
    a, b = torch.rand(3, 3, 48, 40, generator=g), torch.rand(3, 3, 48, 40, generator=g)
    torch.testing.assert_close(metric(a, b), _reference_lpips(vgg, linear, a, b), rtol=1e-5, atol=1e-7)
