"""The pure-PyTorch sparse-conv backend: the reference, and the fallback that runs on any device.

Kernel maps come from :mod:`ss4d.ops.sparse.kernel_map` (sorted-key hashing, memoised on the sites);
the convolution is gather-GEMM-scatter, one GEMM per kernel offset with pairs, plus one dense GEMM for
the centre offset of a submanifold kernel (every row pairs with itself there).
"""

from jaxtyping import Float
from torch import Tensor

from ss4d.ops._optional import AnyDevice
from ss4d.ops.sparse.backends.base import SparseConvBackend, zeros_like_output
from ss4d.ops.sparse.kernel_map import ConvMap, KernelMap, KernelSize, submanifold_kernel_map
from ss4d.ops.sparse.tensor import SparseTensor

__all__ = ["TorchBackend", "gather_gemm_scatter"]


def gather_gemm_scatter(
    feats: Float[Tensor, "n ci"], weight: Float[Tensor, "k ci co"], kmap: KernelMap
) -> Float[Tensor, "m co"]:
    """``out[o] = sum over pairs (i, o, k) of feats[i] @ weight[k]``; autograd flows to feats and weight."""
    segments = kmap.segments()
    out = feats @ weight[kmap.identity_offset] if kmap.identity_offset is not None else None
    for k, rows_in, rows_out in segments:
        prod = feats.index_select(0, rows_in) @ weight[k]
        if out is None:  # the accumulator takes the products' dtype (autocast may lower it)
            out = prod.new_zeros(kmap.num_out, prod.shape[1])
        out.index_add_(0, rows_out, prod.to(out.dtype))
    return zeros_like_output(feats, weight, kmap.num_out) if out is None else out


class TorchBackend(AnyDevice, SparseConvBackend):
    """Pure PyTorch, CPU and CUDA, every kernel shape; the reference implementation."""

    name = "torch"
    install_hint = ""

    def submanifold(
        self, x: SparseTensor, weight: Float[Tensor, "k ci co"], kernel_size: KernelSize, dilation: int
    ) -> Float[Tensor, "n co"]:
        return gather_gemm_scatter(x.feats, weight, submanifold_kernel_map(x.sites, kernel_size, dilation))

    def strided(self, x: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "m co"]:
        return gather_gemm_scatter(x.feats, weight, conv_map.pairs)

    def inverse(self, y: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "n co"]:
        return gather_gemm_scatter(y.feats, weight, conv_map.pairs.transposed())
