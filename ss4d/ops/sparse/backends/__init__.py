"""Sparse-convolution backends behind one registry: ``torch`` (reference), ``spconv``, ``torchsparse``.

``"auto"`` picks, per device, the first available of :func:`preference` (measured in
``benchmarks/``), falling back to ``torch``. ``sparse_conv_backends.use(name)`` scopes a default.
"""

from ss4d.ops.registry import BackendRegistry
from ss4d.ops.sparse.backends.base import SparseConvBackend
from ss4d.ops.sparse.backends.spconv_backend import SpconvBackend
from ss4d.ops.sparse.backends.torch_backend import TorchBackend, gather_gemm_scatter
from ss4d.ops.sparse.backends.torchsparse_backend import TorchsparseBackend

__all__ = [
    "SparseConvBackend",
    "SpconvBackend",
    "TorchBackend",
    "TorchsparseBackend",
    "gather_gemm_scatter",
    "preference",
    "sparse_conv_backends",
]


def preference(device_type: str) -> list[str]:
    """Backends ``"auto"`` tries on a device type, fastest first (see benchmarks/results/)."""
    if device_type == "cuda":
        return ["spconv", "torchsparse", "torch"]
    return ["torch"]


sparse_conv_backends: BackendRegistry[SparseConvBackend] = BackendRegistry(
    "sparse-conv", preference=preference, fallback="torch"
)
sparse_conv_backends.register(TorchBackend())
sparse_conv_backends.register(SpconvBackend())
sparse_conv_backends.register(TorchsparseBackend())
