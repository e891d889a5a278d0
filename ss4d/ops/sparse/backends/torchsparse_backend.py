"""torchsparse 2.1 backend (CUDA only; not on PyPI).

torchsparse 2.1 cannot be imported without a GPU and has no CPU kernel maps, and it has no 4D kernels.
What this backend runs:

* 3D submanifold kernels (``kt == 1``) on CUDA: torchsparse's ``conv3d`` with its own kernel maps, cached
  on ss4d's sites; weights are reordered from ss4d's z-fastest to torchsparse's x-fastest offset order.
* Temporal and full 4D kernels, strided and inverse convs: **composed** from ss4d's own kernel maps and
  gather-GEMM-scatter on the same device (torchsparse has no 4D kernels, and its stride-2 output sets
  differ from ``F.conv3d`` at grid edges, which would make coarse sites depend on the backend).

Install (CUDA machine): ``pip install git+https://github.com/mit-han-lab/torchsparse.git`` (needs
``libsparsehash-dev``), or the prebuilt wheels listed in torchsparse's README.
"""

import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.ops._optional import is_importable, require
from ss4d.ops.sparse.backends.base import SparseConvBackend
from ss4d.ops.sparse.backends.torch_backend import TorchBackend
from ss4d.ops.sparse.kernel_map import ConvMap, KernelSize
from ss4d.ops.sparse.tensor import SparseTensor
from ss4d.ops.sparse.weights import weight_to_torchsparse

__all__ = ["TorchsparseBackend"]

_HINT = (
    "torchsparse is not on PyPI and is CUDA-only (v2.1): on a CUDA machine run "
    "`sudo apt-get install libsparsehash-dev && pip install git+https://github.com/mit-han-lab/torchsparse.git`, "
    "or use backend='spconv' / 'torch'."
)


class TorchsparseBackend(SparseConvBackend):
    """torchsparse 2.1 for 3D submanifold kernels on CUDA; ss4d gather-GEMM-scatter for the rest."""

    name = "torchsparse"
    install_hint = _HINT

    def __init__(self) -> None:
        self._composed = TorchBackend()

    def is_available(self, device: torch.device) -> bool:
        return device.type == "cuda" and torch.cuda.is_available() and is_importable("torchsparse")

    def unavailable_reason(self, device: torch.device) -> str:
        if device.type != "cuda":
            return f"torchsparse 2.1 runs on CUDA only, not {device.type}."
        if not is_importable("torchsparse"):
            return "torchsparse is not installed."
        return ""

    def submanifold(
        self, x: SparseTensor, weight: Float[Tensor, "k ci co"], kernel_size: KernelSize, dilation: int
    ) -> Float[Tensor, "n co"]:
        if kernel_size[0] != 1 or dilation != 1 or x.num_voxels == 0:
            return self._composed.submanifold(x, weight, kernel_size, dilation)
        ts = require("torchsparse", hint=_HINT)
        F = require("torchsparse.nn.functional", hint=_HINT)
        E = x.layout.num_entries
        X, Y, Z = x.spatial_shape
        inp = ts.SparseTensor(x.feats, x.coords, stride=1, spatial_range=(E, X, Y, Z))
        # torchsparse caches kernel maps on the tensor: share one cache per ss4d sites object and grad mode
        # (maps built with training=False lack the backward maps).
        training = torch.is_grad_enabled()
        inp._caches = x.sites.memo(("torchsparse_caches", training), lambda: inp._caches)
        ks = kernel_size[1:]
        out = F.conv3d(
            inp,
            weight_to_torchsparse(weight, kernel_size),
            ks,
            None,
            1,
            tuple(k // 2 for k in ks),
            1,
            training=training,
        )
        return out.feats

    def strided(self, x: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "m co"]:
        return self._composed.strided(x, weight, conv_map)

    def inverse(self, y: SparseTensor, weight: Float[Tensor, "k ci co"], conv_map: ConvMap) -> Float[Tensor, "n co"]:
        return self._composed.inverse(y, weight, conv_map)
