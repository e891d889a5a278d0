"""LPIPS (VGG, v0.1), computed only when its weights are already on disk: ss4d never downloads at run time.

The network is written here (VGG16's convolutional trunk + LPIPS's per-layer 1x1 weights), so neither
torchvision nor the ``lpips`` package's code is needed -- only two weight files:

* VGG16 ImageNet weights, torchvision's ``vgg16-397923af.pth`` (default: torch's hub cache, where torchvision
  puts it);
* LPIPS's linear layers ``vgg.pth`` (v0.1), shipped inside the ``lpips`` wheel (``pip install --no-deps lpips``
  puts it at ``site-packages/lpips/weights/v0.1/vgg.pth``; found there without importing the package).

Both are loaded with ``torch.load(weights_only=True)`` (tensors only, no code). :func:`load_lpips` raises
:class:`~ss4d.errors.BackendUnavailableError` naming the missing file and how to get it;
:func:`lpips_if_available` returns ``(None, reason)`` for callers where the metric is optional.
"""

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from ss4d.errors import BackendUnavailableError

__all__ = ["LPIPS", "default_linear_path", "default_vgg_path", "load_lpips", "lpips_if_available"]

VGG16_FILE = "vgg16-397923af.pth"
# VGG16 "D" trunk; LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (after torchvision indices 3, 8,
# 15, 22, 29)
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_TAPS = (3, 8, 15, 22, 29)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def default_vgg_path() -> Path:
    """Where torchvision keeps VGG16's ImageNet weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def default_linear_path() -> Path | None:
    """LPIPS's ``weights/v0.1/vgg.pth`` inside an installed ``lpips`` package (None when not installed)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "vgg.pth"


class LPIPS(nn.Module):
    """LPIPS-VGG distance ``[N]`` between ``[N, 3, H, W]`` images in [0, 1] (differentiable, frozen weights)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU()]
                c_in = int(v)
        self.features = nn.Sequential(*layers)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def load_weights(self, vgg: dict[str, Tensor], linear: dict[str, Tensor]) -> "LPIPS":
        """Load torchvision VGG16 (``features.*`` keys; others ignored) and LPIPS ``lin{k}.model.1.weight``."""
        self.features.load_state_dict({k[len("features.") :]: v for k, v in vgg.items() if k.startswith("features.")})
        self.lins.load_state_dict({f"{k}.weight": linear[f"lin{k}.model.1.weight"] for k in range(5)})
        return self

    def _taps(self, x: Tensor) -> list[Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))  # unit length per pixel
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"LPIPS needs two [N, 3, H, W] images, got {tuple(pred.shape)} and {tuple(target.shape)}")
        a = (pred * 2 - 1 - self.shift) / self.scale
        b = (target * 2 - 1 - self.shift) / self.scale
        total = pred.new_zeros(pred.shape[0])
        for lin, fa, fb in zip(self.lins, self._taps(a), self._taps(b), strict=True):
            total = total + lin((fa - fb).square()).mean((1, 2, 3))
        return total


def load_lpips(vgg_weights: str | Path | None = None, linear_weights: str | Path | None = None) -> LPIPS:
    """LPIPS with weights from disk (defaults: torch's hub cache; the installed ``lpips`` package).

    Raises:
        BackendUnavailableError: a weights file is missing (the message says how to get it).
    """
    vgg_path = Path(vgg_weights) if vgg_weights is not None else default_vgg_path()
    if not vgg_path.is_file():
        raise BackendUnavailableError(
            f"LPIPS needs torchvision's VGG16 ImageNet weights at {vgg_path}; ss4d never downloads at run time. On a "
            "machine with internet: python -c \"import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')\""
            f" and copy ~/.cache/torch/hub/checkpoints/{VGG16_FILE} here (or pass its path)."
        )
    lin_path = Path(linear_weights) if linear_weights is not None else default_linear_path()
    if lin_path is None or not lin_path.is_file():
        raise BackendUnavailableError(
            f"LPIPS needs its linear-layer weights (lpips/weights/v0.1/vgg.pth; looked at {lin_path}): "
            "pip install --no-deps lpips, or pass the file's path."
        )
    vgg = torch.load(vgg_path, map_location="cpu", weights_only=True)
    linear = torch.load(lin_path, map_location="cpu", weights_only=True)
    return LPIPS().load_weights(vgg, linear)


def lpips_if_available(
    vgg_weights: str | Path | None = None, linear_weights: str | Path | None = None
) -> tuple[LPIPS | None, str]:
    """``(metric, "")`` when LPIPS can run here, else ``(None, why not)``."""
    try:
        return load_lpips(vgg_weights, linear_weights), ""
    except BackendUnavailableError as e:
        return None, str(e)
