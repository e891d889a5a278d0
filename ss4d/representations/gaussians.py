"""Per-frame 3D Gaussians as produced by the SS4D Gaussian decoder (TRELLIS conventions).

Raw (pre-activation) fields are stored; activated values are properties:

* ``xyz = _xyz * aabb_size + aabb_min`` (the object lives in [-0.5, 0.5]^3);
* ``scaling = sqrt(f(_scaling + f^-1(scaling_bias))^2 + filter_3d^2)`` (3D filter), where ``f`` is the
  ``scaling_activation``: ``softplus`` (TRELLIS' and SS4D's default) or ``exp`` (the other official option);
* ``opacity = sigmoid(_opacity + logit(opacity_bias))``;
* ``rotation = normalize(_rotation + [1, 0, 0, 0])`` (quaternion w, x, y, z);
* ``features = _features_dc`` (SH degree 0, ``[n, 1, 3]``; colour = 0.28209479 * f_dc + 0.5).
"""

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ss4d.errors import ConfigError

__all__ = ["SCALING_ACTIVATIONS", "GaussianActivation", "ScalingActivation", "Gaussians", "quaternion_to_matrix"]


def quaternion_to_matrix(q: Float[Tensor, "*n 4"]) -> Float[Tensor, "*n 3 3"]:
    """Rotation matrices of unit quaternions ``(w, x, y, z)``."""
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))


ScalingActivation = Literal["softplus", "exp"]
SCALING_ACTIVATIONS: tuple[str, ...] = get_args(ScalingActivation)


@dataclass(frozen=True)
class GaussianActivation:
    """Biases and filters of the activations (TRELLIS defaults)."""

    scaling_bias: float = 0.004
    opacity_bias: float = 0.1
    filter_3d: float = 9e-4
    aabb: tuple[float, ...] = (-0.5, -0.5, -0.5, 1.0, 1.0, 1.0)
    scaling_activation: ScalingActivation = "softplus"

    def __post_init__(self) -> None:
        if self.scaling_activation not in SCALING_ACTIVATIONS:
            raise ConfigError(f"scaling_activation {self.scaling_activation!r} is not one of {SCALING_ACTIVATIONS}")
        if not self.scaling_bias > 0:
            raise ConfigError(f"scaling_bias must be > 0 (the scale of a zero raw value), got {self.scaling_bias}")
        if not 0 < self.opacity_bias < 1:
            raise ConfigError(f"opacity_bias must be in (0, 1) (the opacity of a zero raw value), "
                              f"got {self.opacity_bias}")

    def _inverse(self, y: Tensor) -> Tensor:
        if self.scaling_activation == "exp":
            return y.log()
        return y + torch.log(-torch.expm1(-y))  # softplus^-1

    @property
    def _scale_bias(self) -> float:
        """``f^-1(scaling_bias)``: the raw offset that makes a zero raw scale the bias."""
        b = self.scaling_bias
        return math.log(b) if self.scaling_activation == "exp" else b + math.log(-math.expm1(-b))

    def activate_scaling(self, raw: Tensor) -> Tensor:
        """Activated scales (with the 3D filter) of raw ``_scaling`` values."""
        f = torch.exp if self.scaling_activation == "exp" else F.softplus
        return (f(raw + self._scale_bias).square() + self.filter_3d**2).sqrt()

    def raw_scaling(self, scale: Tensor) -> Tensor:
        """Inverse of :meth:`activate_scaling`; scales at or below the 3D filter map to a very small raw scale."""
        unfiltered = (scale.square() - self.filter_3d**2).clamp_min(1e-20).sqrt()
        return self._inverse(unfiltered) - self._scale_bias


@dataclass(frozen=True)
class Gaussians:
    """One frame's Gaussians (raw fields). All tensors share the first dimension n."""

    _xyz: Float[Tensor, "n 3"]
    _features_dc: Float[Tensor, "n 1 3"]
    _scaling: Float[Tensor, "n 3"]
    _rotation: Float[Tensor, "n 4"]
    _opacity: Float[Tensor, "n 1"]
    activation: GaussianActivation = field(default_factory=GaussianActivation)

    def __len__(self) -> int:
        return self._xyz.shape[0]

    @property
    def xyz(self) -> Float[Tensor, "n 3"]:
        aabb = torch.tensor(self.activation.aabb, dtype=self._xyz.dtype, device=self._xyz.device)
        return self._xyz * aabb[3:] + aabb[:3]

    @property
    def scaling(self) -> Float[Tensor, "n 3"]:
        return self.activation.activate_scaling(self._scaling)

    @property
    def opacity(self) -> Float[Tensor, "n 1"]:
        b = self.activation.opacity_bias
        return torch.sigmoid(self._opacity + math.log(b / (1 - b)))

    @property
    def rotation(self) -> Float[Tensor, "n 4"]:
        bias = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=self._rotation.dtype, device=self._rotation.device)
        return F.normalize(self._rotation + bias, dim=-1)

    @property
    def features(self) -> Float[Tensor, "n 1 3"]:
        return self._features_dc

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Gaussians":
        move = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return Gaussians(
            move(self._xyz),
            move(self._features_dc),
            move(self._scaling),
            move(self._rotation),
            move(self._opacity),
            self.activation,
        )
