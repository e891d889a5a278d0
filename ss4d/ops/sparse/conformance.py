"""Conformance check for a sparse-conv backend: forward and backward against the ``torch`` reference.

:func:`check_sparse_conv_backend` runs a registered backend on a fixed set of cases (3D, temporal 1D,
full 4D and dilated submanifold kernels; strided and inverse convs; an empty tensor and a single voxel;
several frames and samples) and compares outputs and the gradients of feats, weight and bias with the
``torch`` backend, which the test suite checks against dense ``F.conv3d`` references. The test suite runs
it for every registered backend; a user backend runs it before trusting the backend (see
``examples/custom_sparse_backend.py``).
"""

from dataclasses import dataclass

import torch

from ss4d.errors import BackendUnavailableError
from ss4d.ops.sparse.backends import sparse_conv_backends
from ss4d.ops.sparse.conv import inverse_conv, strided_conv, subm_conv
from ss4d.ops.sparse.layout import SpacetimeLayout
from ss4d.ops.sparse.tensor import SparseTensor

__all__ = ["ConformanceFailure", "check_sparse_conv_backend"]

_SUBM_KERNELS = [(1, 3, 3, 3), (3, 1, 1, 1), (3, 3, 3, 3), (1, 1, 1, 1), (1, 5, 3, 1)]


class ConformanceFailure(AssertionError):
    """A backend's result differs from the reference (the message names the case and the tensor)."""


@dataclass(frozen=True)
class _Case:
    name: str
    x: SparseTensor


def _cases(device: torch.device, dtype: torch.dtype) -> list[_Case]:
    g = torch.Generator().manual_seed(0)

    def make(batch: int, frames: int, side: int, density: float, channels: int) -> SparseTensor:
        occupied = torch.rand(batch * frames, side, side, side, generator=g) < density
        idx = torch.nonzero(occupied).int()
        feats = torch.randn(len(idx), channels, generator=g, dtype=dtype)
        layout = SpacetimeLayout(batch, frames)
        return SparseTensor(feats, idx, layout, spatial_shape=(side,) * 3).to(device)

    return [
        _Case("random", make(2, 4, 6, 0.3, 5)),
        _Case("dense", make(1, 2, 4, 1.0, 3)),
        _Case("empty", make(1, 2, 4, 0.0, 3)),
        _Case(
            "single-voxel",
            SparseTensor(
                torch.randn(1, 4, generator=g, dtype=dtype),
                torch.tensor([[0, 1, 2, 3]]).int(),
                SpacetimeLayout(1, 1),
                spatial_shape=(4, 4, 4),
            ).to(device),
        ),  # noqa: E501
    ]


def _grads(run, x: SparseTensor, weight: torch.Tensor, bias: torch.Tensor, seed: int):
    feats = x.feats.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    b = bias.detach().clone().requires_grad_(True)
    out = run(x.replace(feats), w, b)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype).to(out.device)
    (out * probe).sum().backward()
    return out.detach(), feats.grad, w.grad, b.grad


def check_sparse_conv_backend(
    name: str, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, rtol: float = 1e-4,
    atol: float = 1e-4,
) -> int:  # fmt: skip
    """Compare backend ``name`` with the ``torch`` reference; returns the number of checked cases.

    Raises:
        UnknownBackendError: ``name`` is not registered.
        BackendUnavailableError: the backend cannot run on ``device`` (with its install hint).
        ConformanceFailure: an output or gradient differs (names the case).
    """
    device = torch.device(device)
    backend = sparse_conv_backends.get(name)
    if not backend.is_available(device):
        raise BackendUnavailableError(f"{name}: {backend.unavailable_reason(device)} {backend.install_hint}".strip())
    checked = 0
    for case in _cases(device, dtype):
        x, ci, co = case.x, case.x.num_channels, 4
        g = torch.Generator().manual_seed(checked)
        for kernel in _SUBM_KERNELS:
            K = kernel[0] * kernel[1] * kernel[2] * kernel[3]
            w = (torch.randn(K, ci, co, generator=g, dtype=dtype) / (K * ci) ** 0.5).to(device)
            b = torch.randn(co, generator=g, dtype=dtype).to(device)
            for dilation in (1, 2) if kernel == (1, 3, 3, 3) else (1,):

                def run(xx, ww, bb, backend_name, kernel=kernel, dilation=dilation):
                    return subm_conv(xx, ww, bb, kernel_size=kernel, dilation=dilation, backend=backend_name).feats

                _compare(f"{case.name} subm {kernel} dilation {dilation}", run, x, w, b, name, rtol, atol)
                checked += 1
        w = (torch.randn(8, ci, co, generator=g, dtype=dtype) / (8 * ci) ** 0.5).to(device)
        b = torch.randn(co, generator=g, dtype=dtype).to(device)

        def down(xx, ww, bb, backend_name):
            return strided_conv(xx, ww, bb, kernel_size=2, stride=2, backend=backend_name)[0].feats

        _compare(f"{case.name} strided k2 s2", down, x, w, b, name, rtol, atol)
        coarse, conv_map = strided_conv(x, w, None, kernel_size=2, stride=2, backend="torch")
        wi = (torch.randn(8, co, ci, generator=g, dtype=dtype) / (8 * co) ** 0.5).to(device)
        bi = torch.randn(ci, generator=g, dtype=dtype).to(device)

        def up(yy, ww, bb, backend_name, conv_map=conv_map):
            return inverse_conv(yy, ww, bb, conv_map, backend=backend_name).feats

        _compare(f"{case.name} inverse k2 s2", up, coarse.detach(), wi, bi, name, rtol, atol)
        checked += 2
    return checked


def _compare(label: str, run, x: SparseTensor, w, b, name: str, rtol: float, atol: float) -> None:
    got = _grads(lambda xx, ww, bb: run(xx, ww, bb, name), x, w, b, seed=1)
    ref = _grads(lambda xx, ww, bb: run(xx, ww, bb, "torch"), x, w, b, seed=1)
    for what, a, r in zip(("output", "grad feats", "grad weight", "grad bias"), got, ref, strict=True):
        try:
            torch.testing.assert_close(a, r, rtol=rtol, atol=atol)
        except AssertionError as e:
            raise ConformanceFailure(f"sparse-conv backend {name!r}, case {label}, {what}: {e}") from None
