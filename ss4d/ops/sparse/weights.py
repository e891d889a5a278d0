"""ss4d's sparse-conv weight layout and converters from/to other libraries.

**ss4d layout: ``[K, c_in, c_out]``**, ``K = kt * kx * ky * kz`` kernel offsets in C order over
``(t, x, y, z)`` (t slowest, z fastest). For a submanifold (odd) kernel offset ``j`` reads the input
at ``p + j - k // 2`` (cross-correlation, like ``F.conv3d`` with ``padding = k // 2``); for a strided
conv it reads ``o * stride - padding + j``. One layout for every backend, so one checkpoint runs on all.

Other layouts:

* spconv 2.x (KRSC): ``[c_out, kx, ky, kz, c_in]``; ``SubMConv4d`` as SS4D uses it:
  ``[c_out, kt, kx, ky, kz, c_in]``;
* torch dense ``F.conv3d``: ``[c_out, c_in, kx, ky, kz]`` (and ``[c_out, c_in, kt, kx, ky, kz]`` for the
  4D helper below);
* torchsparse 2.x: ``[K, c_in, c_out]`` with **x fastest** for odd kernels; ``[c_in, c_out]`` for 1^3.
"""

import math

from jaxtyping import Float
from torch import Tensor

__all__ = [
    "weight_from_dense",
    "weight_from_spconv",
    "weight_from_torchsparse",
    "weight_to_dense",
    "weight_to_spconv",
    "weight_to_torchsparse",
]


def _kernel(kernel_size: tuple[int, ...]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in kernel_size)
    if len(ks) == 4 and ks[0] == 1:
        return ks[1:]
    return ks


def _check(weight: Tensor, kernel_size: tuple[int, ...]) -> tuple[int, int, int]:
    if weight.ndim != 3 or weight.shape[0] != math.prod(kernel_size):
        raise ValueError(
            f"ss4d weight must be [K={math.prod(kernel_size)}, c_in, c_out] for kernel {tuple(kernel_size)}, "
            f"got {tuple(weight.shape)}"
        )
    return weight.shape  # type: ignore[return-value]


def weight_from_spconv(weight: Float[Tensor, "co *k ci"]) -> Float[Tensor, "kk ci co"]:
    """spconv KRSC ``[c_out, *kernel, c_in]`` (3D or 4D) -> ss4d ``[K, c_in, c_out]``."""
    if weight.ndim not in (5, 6):
        raise ValueError(f"spconv weight must be [c_out, kx, ky, kz, c_in] or 4D, got {tuple(weight.shape)}")
    co, ci = weight.shape[0], weight.shape[-1]
    return weight.reshape(co, -1, ci).permute(1, 2, 0).contiguous()


def weight_to_spconv(weight: Float[Tensor, "kk ci co"], kernel_size: tuple[int, ...]) -> Float[Tensor, "co *k ci"]:
    """ss4d ``[K, c_in, c_out]`` -> spconv KRSC ``[c_out, *kernel, c_in]``.

    ``kernel_size`` with 3 entries (or 4 with ``kt == 1``) gives a 3D spconv weight, else a 4D one.
    """
    ks = _kernel(kernel_size)
    _, ci, co = _check(weight, ks)
    return weight.permute(2, 0, 1).reshape(co, *ks, ci).contiguous()


def weight_from_dense(weight: Float[Tensor, "co ci *k"]) -> Float[Tensor, "kk ci co"]:
    """``F.conv3d`` weight ``[c_out, c_in, kx, ky, kz]`` (or with a leading kt) -> ss4d ``[K, c_in, c_out]``."""
    if weight.ndim not in (5, 6):
        raise ValueError(f"dense weight must be [c_out, c_in, kx, ky, kz] or 4D, got {tuple(weight.shape)}")
    co, ci = weight.shape[:2]
    return weight.reshape(co, ci, -1).permute(2, 1, 0).contiguous()


def weight_to_dense(weight: Float[Tensor, "kk ci co"], kernel_size: tuple[int, ...]) -> Float[Tensor, "co ci *k"]:
    """ss4d ``[K, c_in, c_out]`` -> dense ``[c_out, c_in, *kernel]`` (``F.conv3d`` for 3D kernels)."""
    ks = _kernel(kernel_size)
    _, ci, co = _check(weight, ks)
    return weight.permute(2, 1, 0).reshape(co, ci, *ks).contiguous()


def weight_to_torchsparse(weight: Float[Tensor, "kk ci co"], kernel_size: tuple[int, ...]) -> Tensor:
    """ss4d ``[K, c_in, c_out]`` (z fastest) -> torchsparse 2.x odd-kernel order (x fastest); 1^3 -> 2D."""
    ks = _kernel(kernel_size)
    if len(ks) != 3:
        raise ValueError(f"torchsparse has 3D kernels only, got {tuple(kernel_size)}")
    K, ci, co = _check(weight, ks)
    if K == 1:
        return weight[0].contiguous()
    kx, ky, kz = ks
    return weight.reshape(kx, ky, kz, ci, co).permute(2, 1, 0, 3, 4).reshape(K, ci, co).contiguous()


def weight_from_torchsparse(weight: Tensor, kernel_size: tuple[int, ...]) -> Float[Tensor, "kk ci co"]:
    """Inverse of :func:`weight_to_torchsparse`."""
    ks = _kernel(kernel_size)
    if len(ks) != 3:
        raise ValueError(f"torchsparse has 3D kernels only, got {tuple(kernel_size)}")
    if weight.ndim == 2:
        return weight.unsqueeze(0).contiguous()
    kx, ky, kz = ks
    K, ci, co = weight.shape
    return weight.reshape(kz, ky, kx, ci, co).permute(2, 1, 0, 3, 4).reshape(K, ci, co).contiguous()
