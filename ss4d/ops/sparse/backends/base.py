"""The sparse-convolution backend interface (docs/design.md, "Backends")."""

from abc import ABC, abstractmethod

import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.ops.sparse.kernel_map import ConvMap, KernelSize
from ss4d.ops.sparse.tensor import SparseTensor

__all__ = ["SparseConvBackend", "zeros_like_output"]


class SparseConvBackend(ABC):
    """Runs sparse convolutions with ss4d's weight layout ``[K, c_in, c_out]`` (no bias: the caller adds it).

    Output coordinates never depend on the backend: submanifold convs keep the input rows, strided
    convs write the coarse sites of ss4d's :class:`ConvMap`, inverse convs write its fine sites.
    Implementations must be autograd-capable for ``feats`` and ``weight``.
    """

    name: str = ""
    install_hint: str = ""

    @abstractmethod
    def is_available(self, device: torch.device) -> bool:
        """True when installed and able to run on ``device``."""

    def unavailable_reason(self, device: torch.device) -> str:
        """Why :meth:`is_available` is False."""
        return "" if self.is_available(device) else f"{self.name} is not available on {device}."

    @abstractmethod
    def submanifold(
        self, x: SparseTensor, weight: Float[Tensor, "k ci co"], kernel_size: KernelSize, dilation: int
    ) -> Float[Tensor, "n co"]:
        """Submanifold conv over ``(t, x, y, z)`` on ``x``'s sites (outputs on the same rows)."""

    @abstractmethod
    def strided(self, x: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "m co"]:
        """Strided spatial conv from ``conv_map.fine`` (= x's sites) to ``conv_map.coarse`` rows."""

    @abstractmethod
    def inverse(self, y: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "n co"]:
        """Transposed conv of :meth:`strided`: from ``conv_map.coarse`` (= y's sites) to ``conv_map.fine`` rows."""

    def __repr__(self) -> str:
        return f"<sparse-conv backend {self.name!r}>"


def zeros_like_output(feats: Tensor, weight: Tensor, num_out: int) -> Tensor:
    """A zero ``[num_out, c_out]`` result for a conv with no pairs, still on the autograd graph.

    Backward through it then gives zero gradients instead of "does not require grad" (an empty sample
    in a batch must not break training).
    """
    # sums of empty slices: exactly 0 (never 0 * inf) but connected to both inputs
    return feats.new_zeros(num_out, weight.shape[2]) + (feats[:0].sum() + weight[:0].sum())
