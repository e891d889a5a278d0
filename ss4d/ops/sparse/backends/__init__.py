"""Sparse-convolution backends behind one registry: ``torch`` (reference), ``spconv``, ``torchsparse``.

Each backend registers with a per-device priority (measured in ``benchmarks/``); ``"auto"`` picks the
available one of highest priority, falling back to ``torch``. A user backend joins ``"auto"`` by
registering with a priority (see ``examples/custom_sparse_backend.py``).
``sparse_conv_backends.use(name)`` scopes a default.
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
    "sparse_conv_backends",
]


sparse_conv_backends: BackendRegistry[SparseConvBackend] = BackendRegistry("sparse-conv", fallback="torch")
# priorities: fastest first on CUDA (benchmarks/results/sparse_conv.md); on CPU the reference wins
sparse_conv_backends.register(TorchBackend(), priority={"cpu": 10, "cuda": 10})
sparse_conv_backends.register(SpconvBackend(), priority={"cuda": 30})
sparse_conv_backends.register(TorchsparseBackend(), priority={"cuda": 20})
