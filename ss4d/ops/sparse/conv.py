"""Functional sparse convolutions on :class:`SparseTensor` with a selectable backend.

* :func:`subm_conv`: submanifold conv (outputs on the input sites) with odd kernels over
  ``(t, x, y, z)``: ``3`` or ``(3, 3, 3)`` = 3^3 spatial per frame; ``(3, 1, 1, 1)`` = temporal (same
  xyz in neighbouring frames of the same sample); ``(3, 3, 3, 3)`` = full 4D.
* :func:`strided_conv`: spatial conv with stride (e.g. kernel 2 / stride 2), returning the coarse tensor
  and the :class:`ConvMap` that :func:`inverse_conv` uses to go back to exactly the fine sites.

Weights are in ss4d's layout ``[K, c_in, c_out]`` (:mod:`ss4d.ops.sparse.weights`); the bias is added
here, after the backend, for every backend. ``backend`` is a registered name or ``"auto"``
(see :mod:`ss4d.ops.sparse.backends`).
"""

import math

from jaxtyping import Float
from torch import Tensor

from ss4d.errors import MappingMismatchError
from ss4d.ops.sparse.backends import sparse_conv_backends
from ss4d.ops.sparse.kernel_map import ConvMap, KernelSize, normalize_kernel_size, strided_conv_map
from ss4d.ops.sparse.tensor import SparseTensor

__all__ = ["inverse_conv", "strided_conv", "subm_conv"]


def _check_weight(x: SparseTensor, weight: Tensor, bias: Tensor | None, kernel_size: KernelSize, what: str) -> None:
    K = math.prod(kernel_size)
    if weight.ndim != 3 or weight.shape[0] != K:
        raise ValueError(
            f"{what}: `weight` must be [K={K}, c_in, c_out] for kernel {kernel_size} (ss4d layout; convert "
            f"spconv weights with ss4d.ops.sparse.weight_from_spconv), got {tuple(weight.shape)}"
        )
    if weight.shape[1] != x.num_channels:
        raise ValueError(f"{what}: input has {x.num_channels} channels but `weight` expects {weight.shape[1]}")
    if weight.dtype != x.dtype or weight.device != x.device:
        raise ValueError(f"{what}: `weight` is {weight.dtype} on {weight.device}, features are {x.dtype} on {x.device}")
    if bias is not None and (bias.shape != (weight.shape[2],) or bias.dtype != x.dtype):
        raise ValueError(f"{what}: `bias` must be [{weight.shape[2]}] {x.dtype}, got {tuple(bias.shape)} {bias.dtype}")


def _add_bias(feats: Tensor, bias: Tensor | None) -> Tensor:
    return feats if bias is None else feats + bias


def subm_conv(
    x: SparseTensor,
    weight: Float[Tensor, "k ci co"],
    bias: Float[Tensor, " co"] | None = None,
    *,
    kernel_size: int | tuple[int, ...] = 3,
    dilation: int = 1,
    backend: str = "auto",
) -> SparseTensor:
    """Submanifold convolution: ``out[p] = bias + sum_k weight[k]^T x[p + offset_k]`` over active neighbours.

    Args:
        x: input, ``c_in`` channels.
        weight: ``[prod(kernel_size), c_in, c_out]``.
        bias: ``[c_out]`` or None.
        kernel_size: odd extents; int ``k`` = ``(1, k, k, k)``; 3 ints = ``(x, y, z)``; 4 ints = ``(t, x, y, z)``.
        dilation: spacing of kernel taps (all axes).
        backend: ``"auto"``, ``"torch"``, ``"spconv"``, ``"torchsparse"``.

    Returns:
        a tensor on ``x``'s sites (same rows, same order) with ``c_out`` channels.

    Raises:
        ValueError: even kernels, wrong weight shape / channels / dtype / device.
        UnknownBackendError, BackendUnavailableError: bad or unavailable ``backend``.
    """
    ks = normalize_kernel_size(kernel_size)
    if any(k % 2 == 0 for k in ks):
        raise ValueError(f"subm_conv needs odd kernel extents, got {ks}")
    if not isinstance(dilation, int) or isinstance(dilation, bool) or dilation < 1:
        raise ValueError(f"`dilation` must be an int >= 1, got {dilation!r}")
    _check_weight(x, weight, bias, ks, "subm_conv")
    impl = sparse_conv_backends.resolve(backend, x.device)
    return x.replace(_add_bias(impl.submanifold(x, weight, ks, dilation), bias))


def strided_conv(
    x: SparseTensor,
    weight: Float[Tensor, "k ci co"],
    bias: Float[Tensor, " co"] | None = None,
    *,
    kernel_size: int | tuple[int, ...] = 2,
    stride: int = 2,
    padding: int = 0,
    backend: str = "auto",
) -> tuple[SparseTensor, ConvMap]:
    """Spatial (per-frame) convolution with ``stride``, as ``F.conv3d`` restricted to reachable outputs.

    A coarse voxel ``o`` is active when any fine voxel ``o * stride - padding + j`` (``j < k``) is;
    the coarse grid is ``(S + 2 * padding - k) // stride + 1``, rows sorted by ``(entry, x, y, z)``.

    Returns:
        ``(coarse, conv_map)``; pass ``conv_map`` to :func:`inverse_conv` to return to ``x``'s sites.
    """
    ks = normalize_kernel_size(kernel_size)
    _check_weight(x, weight, bias, ks, "strided_conv")
    conv_map = strided_conv_map(x.sites, ks, int(stride), int(padding))
    impl = sparse_conv_backends.resolve(backend, x.device)
    out = _add_bias(impl.strided(x, weight, conv_map), bias)
    return SparseTensor.from_sites(out, conv_map.coarse), conv_map


def inverse_conv(
    y: SparseTensor,
    weight: Float[Tensor, "k ci co"],
    bias: Float[Tensor, " co"] | None,
    conv_map: ConvMap,
    *,
    backend: str = "auto",
) -> SparseTensor:
    """Transposed convolution of a :func:`strided_conv`, back onto exactly its fine sites.

    ``out[i] = bias + sum over pairs (i, o, k) of weight[k]^T y[o]``, i.e. ``F.conv_transpose3d`` with
    weight ``[c_in, c_out, *k]`` read back at the fine sites.

    Raises:
        MappingMismatchError: ``y`` is not on ``conv_map``'s coarse sites.
    """
    if not y.sites.same_as(conv_map.coarse):
        raise MappingMismatchError(
            f"inverse_conv: `y` ({y.sites}) is not on the coarse sites of `conv_map` ({conv_map.coarse})"
        )
    ks = normalize_kernel_size(conv_map.kernel_size)
    _check_weight(y, weight, bias, ks, "inverse_conv")
    impl = sparse_conv_backends.resolve(backend, y.device)
    return SparseTensor.from_sites(_add_bias(impl.inverse(y, weight, conv_map), bias), conv_map.fine)
