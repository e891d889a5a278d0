"""Sparse-conv backends, forward and forward+backward, submanifold 3^3 and temporal (3,1,1,1).

Run: ``python -m pytest benchmarks/test_sparse_conv_bench.py --benchmark-json=benchmarks/results/sparse_conv.json``
then ``python benchmarks/report.py`` for the table and plot. Kernel maps are cached (built once per
coordinate set, as in a network); the ``map`` cases time building them too.
"""

import functools

import pytest
import torch

from benchmarks.data import DISTRIBUTIONS
from ss4d.ops.sparse import SparseSites, SparseTensor, sparse_conv_backends, subm_conv

BACKENDS = [
    pytest.param(n, marks=pytest.mark.skipif(n not in sparse_conv_backends.available("cpu"), reason=f"{n} unavailable"))
    for n in sparse_conv_backends.names()  # every registered backend
]
SIZES = [5_000, 50_000, 200_000]
CHANNELS = [32, 64, 128]
KERNELS = {"subm3": (1, 3, 3, 3), "temporal": (3, 1, 1, 1)}


@functools.lru_cache(maxsize=4)
def _input(dist: str, n: int, c: int, frames: int) -> SparseTensor:
    return DISTRIBUTIONS[dist](n, num_frames=frames, channels=c, seed=0)


def _rounds(n: int, c: int) -> int:
    return 3 if n * c >= 200_000 * 64 else 7


def _run(benchmark, x: SparseTensor, kernel, backend: str, mode: str):
    K = kernel[0] * kernel[1] * kernel[2] * kernel[3]
    w = torch.randn(K, x.num_channels, x.num_channels) / (K * x.num_channels) ** 0.5
    if mode == "fwd":
        fn = lambda: subm_conv(x, w, kernel_size=kernel, backend=backend)  # noqa: E731
    elif mode == "fwd+map":
        fn = lambda: subm_conv(  # noqa: E731
            SparseTensor.from_sites(x.feats, SparseSites(x.coords, x.layout, x.spatial_shape)),
            w,
            kernel_size=kernel,
            backend=backend,
        )
    else:
        feats = x.feats.clone().requires_grad_(True)
        wg = w.clone().requires_grad_(True)

        def fn():
            out = subm_conv(x.replace(feats), wg, kernel_size=kernel, backend=backend)
            out.feats.sum().backward()

    fn()  # builds and caches the kernel map (except for fwd+map)
    n, c = x.num_voxels, x.num_channels
    benchmark.extra_info.update(voxels=n, channels=c, backend=backend, mode=mode)
    benchmark.pedantic(fn, rounds=_rounds(n, c), warmup_rounds=1, iterations=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("voxels", SIZES)
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_subm_conv_grid(benchmark, kernel, voxels, channels, mode, backend):
    """Surface-like voxels (a drifting sphere shell, 8 frames): SS4D's regime."""
    benchmark.group = f"{kernel} shell {mode} c={channels}"
    benchmark.extra_info.update(kernel=kernel, dist="shell")
    _run(benchmark, _input("shell", voxels, channels, 8), KERNELS[kernel], backend, mode)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["fwd", "fwd+map"])
@pytest.mark.parametrize("dist", ["shell", "uniform"])
def test_subm3_50k_64(benchmark, dist, mode, backend):
    """The headline case: submanifold 3^3, ~50k voxels x 64 channels, one frame."""
    benchmark.group = f"headline subm3 50k x 64 {dist} {mode}"
    benchmark.extra_info.update(kernel="subm3", dist=dist)
    _run(benchmark, _input(dist, 50_000, 64, 1), KERNELS["subm3"], backend, mode)
