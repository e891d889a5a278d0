"""Sparse convolution layers over spacetime tensors (3D spatial, 1D temporal, factorized 4D, full 4D).

Each layer holds a weight in ss4d's layout ``[K, c_in, c_out]`` (see :mod:`ss4d.ops.sparse.weights`) and
a ``backend`` attribute (``"auto"`` by default; not part of the state dict), so one checkpoint runs on
every backend and a model can be switched with :func:`set_sparse_conv_backend`.
"""

import math

import torch
from torch import nn

from ss4d.ops.sparse import ConvMap, SparseTensor, inverse_conv, sparse_conv_backends, strided_conv, subm_conv
from ss4d.ops.sparse.kernel_map import normalize_kernel_size

__all__ = [
    "FactorizedSparseConv4d",
    "SparseConv3d",
    "SparseConv4d",
    "SparseDownConv3d",
    "SparseInverseConv3d",
    "SparseSubMConv",
    "SparseTemporalConv1d",
    "set_sparse_conv_backend",
]


class _SparseConvBase(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int, int],
        *,
        bias: bool,
        backend: str,
        weight_in: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.backend = backend
        K = math.prod(kernel_size)
        self.weight = nn.Parameter(torch.empty(K, in_channels, out_channels, **dd))
        self.bias = nn.Parameter(torch.empty(out_channels, **dd)) if bias else None
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
        bias: bool = True,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        ks = normalize_kernel_size(kernel_size)
        if any(k % 2 == 0 for k in ks):
            raise ValueError(f"submanifold kernels must be odd, got {ks}")
        super().__init__(in_channels, out_channels, ks, bias=bias, backend=backend, device=device, dtype=dtype)
        self.dilation = dilation

    def forward(self, x: SparseTensor) -> SparseTensor:
        return subm_conv(
            x,
            self.weight,
            self.bias,
            kernel_size=self.kernel_size,
            dilation=self.dilation,
            backend=self.backend,
        )


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
        bias, backend, device, dtype: passed to both convs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_kernel: int = 3,
        temporal_kernel: int = 3,
        bias: bool = True,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"bias": bias, "backend": backend, "device": device, "dtype": dtype}
        self.spatial = SparseConv3d(in_channels, out_channels, spatial_kernel, **kw)
        self.temporal = SparseTemporalConv1d(out_channels, out_channels, temporal_kernel, **kw)

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
        bias: bool = True,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        ks = normalize_kernel_size(kernel_size)
        super().__init__(in_channels, out_channels, ks, bias=bias, backend=backend, device=device, dtype=dtype)
        self.stride, self.padding = stride, padding

    def forward(self, x: SparseTensor) -> tuple[SparseTensor, ConvMap]:
        return strided_conv(
            x,
            self.weight,
            self.bias,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            backend=self.backend,
        )


class SparseInverseConv3d(_SparseConvBase):
    """Transposed conv of a :class:`SparseDownConv3d`: ``(coarse, conv_map) -> fine`` on the cached fine sites."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 2,
        *,
        bias: bool = True,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        ks = normalize_kernel_size(kernel_size)
        super().__init__(in_channels, out_channels, ks, bias=bias, backend=backend, device=device, dtype=dtype)

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
