"""spconv 2.x backend (PyPI ``spconv`` = CPU build; ``spconv-cu12x`` = CUDA builds).

* Submanifold convs use spconv's own index-pair generation (``SubMConv3d``-style for ``kt == 1``,
  ``SubMConv4d``-style over ``(t, x, y, z)`` otherwise) and its native gather-GEMM-scatter.
* Strided and inverse convs run spconv's gather-GEMM-scatter on ss4d's own pairs, so the coarse sites and
  their order are the same on every backend.

Defects of the CPU build (docs/design.md, "Backends") are handled here, not by the caller:

1. with more than one torch intra-op thread its CPU conv returns wrong rows: every spconv call on
   CPU (forward and backward) runs with one thread, and the caller's setting is restored afterwards;
2. a biased conv in eval mode raises "cpu don't support act and bias": spconv never sees the bias
   (``ss4d.ops.sparse.conv`` adds it);
3. (found here) its native backward calls ``torch.cuda.current_stream()`` even for CPU tensors, so with a
   CPU-only torch every backward raises "Torch not compiled with CUDA enabled": on CPU the backward is
   computed by torch ops (gather-GEMM-scatter) over spconv's own index pairs.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.ops._optional import is_importable, require
from ss4d.ops.sparse.backends.base import SparseConvBackend, zeros_like_output
from ss4d.ops.sparse.kernel_map import ConvMap, KernelMap, KernelSize
from ss4d.ops.sparse.sites import SparseSites
from ss4d.ops.sparse.tensor import SparseTensor
from ss4d.ops.sparse.weights import weight_to_spconv

__all__ = ["SpconvBackend", "single_thread_on_cpu"]

_HINT = "Install it with `pip install 'ss4d[spconv]'` (CPU) or a CUDA wheel such as `pip install spconv-cu124`."


@contextlib.contextmanager
def single_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """Run the block with one torch thread on CPU (spconv's CPU conv races otherwise); restore after."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _IndiceConv(torch.autograd.Function):
    """spconv's native indice conv with the CPU thread guard around forward and backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        feats: Tensor,
        filters: Tensor,
        pairs: Tensor,
        pair_num: Tensor,
        num_out: int,
        inverse: bool,
        subm: bool,
    ) -> Tensor:
        ops = require("spconv.pytorch.ops", hint=_HINT)
        ctx.save_for_backward(feats, filters, pairs, pair_num)
        ctx.flags = (inverse, subm)
        with single_thread_on_cpu(feats.device):
            return ops.indice_conv(feats.contiguous(), filters, pairs, pair_num, num_out, inverse, subm)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        feats, filters, pairs, pair_num = ctx.saved_tensors
        inverse, subm = ctx.flags
        grad_out = grad_out.contiguous()
        if feats.device.type == "cpu":
            grad_feats, grad_filters = _native_backward_in_torch(
                feats, filters, grad_out, pairs, pair_num, inverse, subm
            )
        else:
            ops = require("spconv.pytorch.ops", hint=_HINT)
            grad_feats, grad_filters = ops.indice_conv_backward(
                feats, filters, grad_out, pairs, pair_num, inverse, subm
            )
        return grad_feats, grad_filters, None, None, None, None, None


def _native_backward_in_torch(
    feats: Tensor,
    filters: Tensor,
    grad_out: Tensor,
    pairs: Tensor,
    pair_num: Tensor,
    inverse: bool,
    subm: bool,
) -> tuple[Tensor, Tensor]:
    """Gradients of spconv's native indice conv, read from its pair tables (KRSC filters [co, *k, ci]).

    spconv stores submanifold pairs for every offset but counts only the first half: offset ``i`` past
    the centre has ``pair_num[K - 1 - i]`` pairs.
    """
    co, ci = filters.shape[0], filters.shape[-1]
    w = filters.reshape(co, -1, ci)  # [co, K, ci]
    K = w.shape[1]
    centre = K // 2
    counts = pair_num.tolist()
    grad_w = torch.zeros_like(w)
    if subm:
        grad_feats = grad_out @ w[:, centre]
        grad_w[:, centre] = grad_out.T @ feats
    else:
        grad_feats = torch.zeros_like(feats)
    side_in, side_out = int(inverse), int(not inverse)
    for k in range(K):
        if subm and k == centre:
            continue
        n = counts[K - 1 - k] if subm and k > centre else counts[k]
        if n <= 0:
            continue
        rows_in = pairs[side_in, k, :n].long()
        rows_out = pairs[side_out, k, :n].long()
        g = grad_out.index_select(0, rows_out)
        grad_feats.index_add_(0, rows_in, g @ w[:, k])
        grad_w[:, k] = g.T @ feats.index_select(0, rows_in)
    return grad_feats, grad_w.reshape(filters.shape)


def _spconv_subm_pairs(sites: SparseSites, kernel_size: KernelSize, dilation: int) -> tuple[Tensor, Tensor]:
    ops = require("spconv.pytorch.ops", hint=_HINT)
    algo = require("spconv.core", hint=_HINT).ConvAlgo.Native
    c = sites.coords
    X, Y, Z = sites.spatial_shape
    if kernel_size[0] == 1:  # 3D per entry: spconv's batch index is our entry
        indices, batch, shape, ks = c, sites.layout.num_entries, [X, Y, Z], list(kernel_size[1:])
    else:  # 4D over (t, x, y, z): spconv's batch index is the sample
        T = sites.layout.num_frames
        sample_frame = torch.stack([torch.div(c[:, 0], T, rounding_mode="floor"), c[:, 0] % T], dim=1)
        indices = torch.cat([sample_frame, c[:, 1:]], dim=1).to(torch.int32).contiguous()
        batch, shape, ks = sites.layout.batch_size, [T, X, Y, Z], list(kernel_size)
    nd = len(ks)
    _, pairs, pair_num = ops.get_indice_pairs(
        indices,
        batch,
        shape,
        algo,
        ks,
        [1] * nd,
        [k // 2 * dilation for k in ks],
        [dilation] * nd,
        [0] * nd,
        True,
        False,
    )
    return pairs, pair_num


def _pairs_in_spconv_format(kmap: KernelMap) -> tuple[Tensor, Tensor]:
    """ss4d pairs (grouped by offset) -> spconv's ``[2, K, max_pairs]`` int32 (-1 padded) and counts."""
    device = kmap.in_idx.device
    width = max(max(kmap.counts, default=0), 1)
    pairs = torch.full((2, kmap.kernel_volume, width), -1, dtype=torch.int32, device=device)
    for k, rows_in, rows_out in kmap.segments():
        pairs[0, k, : rows_in.numel()] = rows_in.to(torch.int32)
        pairs[1, k, : rows_out.numel()] = rows_out.to(torch.int32)
    return pairs, torch.tensor(kmap.counts, dtype=torch.int32, device=device)


class SpconvBackend(SparseConvBackend):
    """spconv 2.x, CPU (with the defect guards above) and CUDA; 3D and 4D submanifold kernels."""

    name = "spconv"
    install_hint = _HINT

    def is_available(self, device: torch.device) -> bool:
        if device.type not in ("cpu", "cuda") or not is_importable("spconv.pytorch"):
            return False
        # The PyPI `spconv` wheel is a CPU-only build: it imports on a CUDA machine but has no GPU kernels.
        return device.type == "cpu" or not require("spconv.cppconstants", hint=_HINT).CPU_ONLY_BUILD

    def unavailable_reason(self, device: torch.device) -> str:
        if device.type not in ("cpu", "cuda"):
            return f"spconv runs on CPU and CUDA only, not {device.type}."
        if not is_importable("spconv.pytorch"):
            return "spconv is not installed."
        return "" if self.is_available(device) else "this spconv build has no CUDA support."

    def submanifold(
        self, x: SparseTensor, weight: Float[Tensor, "k ci co"], kernel_size: KernelSize, dilation: int
    ) -> Float[Tensor, "n co"]:
        if x.num_voxels == 0:
            return zeros_like_output(x.feats, weight, 0)
        pairs, pair_num = x.sites.memo(
            ("spconv_subm", kernel_size, dilation), lambda: _spconv_subm_pairs(x.sites, kernel_size, dilation)
        )
        filters = weight_to_spconv(weight, kernel_size)
        return _IndiceConv.apply(x.feats, filters, pairs, pair_num, x.num_voxels, False, True)

    def strided(self, x: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "m co"]:
        return self._run(x.feats, weight, conv_map, inverse=False)

    def inverse(self, y: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "n co"]:
        return self._run(y.feats, weight, conv_map, inverse=True)

    def _run(self, feats: Tensor, weight: Tensor, conv_map: ConvMap, *, inverse: bool) -> Tensor:
        num_out = conv_map.fine.num_voxels if inverse else conv_map.coarse.num_voxels
        if conv_map.pairs.in_idx.numel() == 0:
            return zeros_like_output(feats, weight, num_out)
        key = ("spconv_strided", conv_map.kernel_size, conv_map.stride, conv_map.padding)
        pairs, pair_num = conv_map.fine.memo(key, lambda: _pairs_in_spconv_format(conv_map.pairs))
        filters = weight_to_spconv(weight, conv_map.kernel_size)
        return _IndiceConv.apply(feats, filters, pairs, pair_num, num_out, inverse, False)
