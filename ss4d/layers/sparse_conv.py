"""Sparse convolution layers over spacetime tensors (3D spatial, 1D temporal, factorized 4D, full 4D).

Each layer holds a weight in ss4d's layout ``[K, c_in, c_out]`` (see :mod:`ss4d.ops.sparse.weights`) and
a ``backend`` attribute (``"auto"`` by default; not part of the state dict), so one checkpoint runs on
every backend and a model can be switched with :func:`set_sparse_conv_backend`.
"""

import math
from collections.abc import Callable
from typing import Any, TypedDict, Unpack

import torch
from torch import nn

from ss4d.ops.sparse import ConvMap, SparseTensor, inverse_conv, sparse_conv_backends, strided_conv, subm_conv
from ss4d.ops.sparse.kernel_map import normalize_kernel_size

__all__ = [
    "FactorizedSparseConv4d",
    "SparseConv3d",
    "SparseConv4d",
    "SparseConvOptions",
    "SparseDownConv3d",
    "SparseInverseConv3d",
    "SparseSubMConv",
    "SparseTemporalConv1d",
    "set_sparse_conv_backend",
]


class SparseConvOptions(TypedDict, total=False):
    """The keyword options every sparse-conv layer takes; each may be left out (defaults in brackets).

    Args:
        bias: learn a bias ``[c_out]`` [True].
        backend: sparse-conv backend name or ``"auto"`` ["auto"]; module state, not in the state dict.
        device, dtype: where and in which dtype the parameters are created [None, None: torch's defaults].
    """

    bias: bool
    backend: str
    device: torch.device | str | None
    dtype: torch.dtype | None


_DEFAULTS: SparseConvOptions = {"bias": True, "backend": "auto", "device": None, "dtype": None}


class _SparseConvBase(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int, int],
        *,
        weight_in: int | None = None,
        **options: Unpack[SparseConvOptions],
    ) -> None:
        super().__init__()
        if unknown := options.keys() - _DEFAULTS.keys():
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {sorted(unknown)}; "
                f"the sparse-conv options are {sorted(_DEFAULTS)}"
            )
        opts = {**_DEFAULTS, **options}
        dd = {"device": opts["device"], "dtype": opts["dtype"]}
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.backend = opts["backend"]
        K = math.prod(kernel_size)
        self.weight = nn.Parameter(torch.empty(K, in_channels, out_channels, **dd))
        self.bias = nn.Parameter(torch.empty(out_channels, **dd)) if opts["bias"] else None
        self._fan_in = K * (weight_in if weight_in is not None else in_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv3d``'s default initialisation, with fan-in = kernel volume x input channels."""
        bound = 1.0 / math.sqrt(self._fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def zero_output_(self) -> None:
        """Zero weight and bias (the zero-initialised last conv of a residual branch)."""
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _conv(self, op: Callable[..., Any], x: SparseTensor, **op_args: Any) -> Any:
        """``op(x, weight, bias, kernel_size=, backend=, **op_args)``: the functional conv with this layer's state."""
        return op(x, self.weight, self.bias, kernel_size=self.kernel_size, backend=self.backend, **op_args)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}, backend={self.backend!r}"
        )


class SparseSubMConv(_SparseConvBase):
    """Submanifold convolution over ``(t, x, y, z)`` with odd ``kernel_size = (kt, kx, ky, kz)``.

    Input ``[n, c_in]`` on any sites -> output ``[n, c_out]`` on the same sites. Temporal taps reach the
    same xyz in neighbouring frames of the same sample only.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...] = 3,
        *,
        dilation: int = 1,
        **options: Unpack[SparseConvOptions],
    ) -> None:
        ks = normalize_kernel_size(kernel_size)
        if any(k % 2 == 0 for k in ks):
            raise ValueError(f"submanifold kernels must be odd, got {ks}")
        super().__init__(in_channels, out_channels, ks, **options)
        self.dilation = dilation

    def forward(self, x: SparseTensor) -> SparseTensor:
        return self._conv(subm_conv, x, dilation=self.dilation)


class SparseConv3d(SparseSubMConv):
    """Spatial submanifold conv ``k^3`` applied to every frame independently."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, **kwargs) -> None:
        super().__init__(in_channels, out_channels, (1, kernel_size, kernel_size, kernel_size), **kwargs)


class SparseTemporalConv1d(SparseSubMConv):
    """Temporal submanifold conv ``(k, 1, 1, 1)``: same xyz, frames ``t - k//2 .. t + k//2`` of the sample."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, **kwargs) -> None:
        super().__init__(in_channels, out_channels, (kernel_size, 1, 1, 1), **kwargs)


class SparseConv4d(SparseSubMConv):
    """Full spacetime submanifold conv ``k^4``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, **kwargs) -> None:
        super().__init__(in_channels, out_channels, (kernel_size,) * 4, **kwargs)


class FactorizedSparseConv4d(nn.Module):
    """Factorized 4D conv (docs/design.md): a ``k_s^3`` spatial conv per frame, then a ``(k_t, 1, 1, 1)`` temporal conv.

    Args:
        in_channels, out_channels: channels; the spatial conv maps ``in -> out``, the temporal ``out -> out``.
        spatial_kernel, temporal_kernel: odd extents.
        options: :class:`SparseConvOptions` (``bias``, ``backend``, ``device``, ``dtype``), passed to both convs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_kernel: int = 3,
        temporal_kernel: int = 3,
        **options: Unpack[SparseConvOptions],
    ) -> None:
        super().__init__()
        self.spatial = SparseConv3d(in_channels, out_channels, spatial_kernel, **options)
        self.temporal = SparseTemporalConv1d(out_channels, out_channels, temporal_kernel, **options)

    def zero_output_(self) -> None:
        """Zero the temporal conv only, so the spatial conv still receives gradients."""
        self.temporal.zero_output_()

    def forward(self, x: SparseTensor) -> SparseTensor:
        return self.temporal(self.spatial(x))


class SparseDownConv3d(_SparseConvBase):
    """Strided spatial conv (default kernel 2, stride 2): returns ``(coarse, conv_map)``.

    Keep ``conv_map`` for :class:`SparseInverseConv3d`, which returns to exactly the fine sites.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 2,
        *,
        stride: int = 2,
        padding: int = 0,
        **options: Unpack[SparseConvOptions],
    ) -> None:
        super().__init__(in_channels, out_channels, normalize_kernel_size(kernel_size), **options)
        self.stride, self.padding = stride, padding

    def forward(self, x: SparseTensor) -> tuple[SparseTensor, ConvMap]:
        return self._conv(strided_conv, x, stride=self.stride, padding=self.padding)


class SparseInverseConv3d(_SparseConvBase):
    """Transposed conv of a :class:`SparseDownConv3d`: ``(coarse, conv_map) -> fine`` on the cached fine sites."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 2, **options: Unpack[SparseConvOptions]
    ) -> None:
        super().__init__(in_channels, out_channels, normalize_kernel_size(kernel_size), **options)

    def forward(self, y: SparseTensor, conv_map: ConvMap) -> SparseTensor:
        if tuple(conv_map.kernel_size) != self.kernel_size[1:]:
            raise ValueError(
                f"conv_map was built for kernel {conv_map.kernel_size}, this layer has {self.kernel_size[1:]}"
            )
        return inverse_conv(y, self.weight, self.bias, conv_map, backend=self.backend)


def set_sparse_conv_backend(module: nn.Module, backend: str) -> nn.Module:
    """Set ``backend`` on every sparse-conv layer inside ``module`` (returns ``module``)."""

    if backend != "auto":
        sparse_conv_backends.get(backend)  # unknown names fail here, not at the first forward
    for m in module.modules():
        if isinstance(m, _SparseConvBase):
            m.backend = backend
    return module
