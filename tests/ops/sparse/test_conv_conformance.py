"""One conformance suite for every sparse-conv backend, against dense references (forward and backward).

Runs with 2 torch threads (see conftest): spconv's CPU race would show here.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, inverse_conv, strided_conv, subm_conv
from ss4d.ops.sparse.kernel_map import normalize_kernel_size

from .helpers import (
    backend_params,
    dense_active_outputs,
    dense_inverse_reference,
    dense_strided_reference,
    dense_subm_reference,
    random_sparse,
    sparse_tensors,
)

BACKENDS = backend_params()
SUBM_KERNELS = [3, 1, (3, 1, 1, 1), (3, 3, 3, 3), (1, 5, 3, 1)]
TOL = {"rtol": 1e-4, "atol": 1e-4}


def _weights(seed: int, k: int, ci: int, co: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, ci, co, generator=g) / (k * ci) ** 0.5, torch.randn(co, generator=g)


def _check_subm(x: SparseTensor, kernel, backend: str, co: int, dilation: int = 1, seed: int = 0):
    ks = normalize_kernel_size(kernel)
    K = ks[0] * ks[1] * ks[2] * ks[3]
    w, b = _weights(seed, K, x.num_channels, co)
    w.requires_grad_(True)
    b.requires_grad_(True)
    feats = x.feats.clone().requires_grad_(True)
    xin = x.replace(feats)
    out = subm_conv(xin, w, b, kernel_size=kernel, dilation=dilation, backend=backend)
    assert out.same_sites(x)
    # reference in float64
    wd = w.detach().double().requires_grad_(True)
    fd = x.feats.double().requires_grad_(True)
    ref = dense_subm_reference(x.replace(fd), wd, ks, dilation) + b.detach().double()
    torch.testing.assert_close(out.feats.double(), ref, **TOL)
    # backward: gradients of <out, g> for feats, weight and bias
    g = torch.randn(out.feats.shape, generator=torch.Generator().manual_seed(seed + 1))
    (out.feats * g).sum().backward()
    (ref * g.double()).sum().backward()
    torch.testing.assert_close(feats.grad.double(), fd.grad, **TOL)
    torch.testing.assert_close(w.grad.double(), wd.grad, **TOL)
    torch.testing.assert_close(b.grad, g.sum(0), **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", SUBM_KERNELS, ids=str)
@given(x=sparse_tensors(max_channels=16), co=st.integers(1, 16))
def test_subm_conv_matches_dense(backend, kernel, x, co):
    _check_subm(x, kernel, backend, co)


@pytest.mark.parametrize("backend", BACKENDS)
def test_subm_conv_wide_channels_and_dilation(backend):
    x = random_sparse(3, batch_size=2, num_frames=3, shape=(7, 6, 5), density=0.4, channels=64)
    _check_subm(x, 3, backend, co=64)
    _check_subm(x, (3, 3, 3, 3), backend, co=32)
    _check_subm(x, 3, backend, co=8, dilation=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_subm_conv_empty_single_and_border(backend):
    empty = random_sparse(0, shape=(3, 3, 3), density=0.0, channels=3)
    assert empty.num_voxels == 0
    _check_subm(empty, 3, backend, co=2)
    single = SparseTensor(torch.randn(1, 3), torch.tensor([[0, 2, 0, 4]]), spatial_shape=(3, 1, 5))
    _check_subm(single, 3, backend, co=2)
    _check_subm(single, (3, 3, 3, 3), backend, co=2)
    # only the 8 corners of the grid, in 2 samples x 2 frames: every neighbour lookup crosses a border
    corners = torch.tensor([[x, y, z] for x in (0, 4) for y in (0, 4) for z in (0, 4)])
    coords = torch.cat([torch.cat([torch.full((8, 1), e), corners], 1) for e in range(4)])
    border = SparseTensor(torch.randn(32, 5), coords, SpacetimeLayout(2, 2), spatial_shape=(5, 5, 5))
    _check_subm(border, 3, backend, co=3)
    _check_subm(border, (3, 1, 1, 1), backend, co=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_temporal_conv_stays_inside_sample(backend):
    """(3,1,1,1): frame t sees t-1, t+1 of its own sample only, at the same xyz."""
    coords = torch.tensor([[e, 1, 1, 1] for e in range(6)])  # 2 samples x 3 frames, one voxel each
    x = SparseTensor(torch.ones(6, 1), coords, SpacetimeLayout(2, 3))
    out = subm_conv(x, torch.ones(3, 1, 1), kernel_size=(3, 1, 1, 1), backend=backend)
    assert out.feats.squeeze(1).tolist() == [2.0, 3.0, 2.0, 2.0, 3.0, 2.0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 2, 0), (1, 2, 0)])
@given(x=sparse_tensors(max_frames=3, max_side=7, max_channels=12), co=st.integers(1, 8))
def test_strided_and_inverse_conv_match_dense(backend, kernel, stride, padding, x, co):
    ks = normalize_kernel_size(kernel)
    if any((s + 2 * padding - k) // stride + 1 < 1 for s, k in zip(x.spatial_shape, ks[1:], strict=True)):
        with pytest.raises(ValueError, match="does not fit"):
            strided_conv(
                x,
                *_weights(0, ks[1] ** 3, x.num_channels, co),
                kernel_size=kernel,
                stride=stride,
                padding=padding,
                backend=backend,
            )
        return
    K = ks[1] ** 3
    w, b = _weights(1, K, x.num_channels, co)
    w.requires_grad_(True)
    feats = x.feats.clone().requires_grad_(True)
    coarse, cmap = strided_conv(
        x.replace(feats), w, b, kernel_size=kernel, stride=stride, padding=padding, backend=backend
    )
    # coarse sites: exactly the outputs whose window holds an active voxel, rows sorted
    got = {tuple(r) for r in coarse.coords.tolist()}
    assert got == dense_active_outputs(x, ks, stride, padding)
    assert coarse.coords.tolist() == sorted(coarse.coords.tolist())
    assert coarse.layout == x.layout
    wd = w.detach().double().requires_grad_(True)
    fd = x.feats.double().requires_grad_(True)
    ref = dense_strided_reference(x.replace(fd), wd, ks, stride, padding, coarse) + b.double()
    torch.testing.assert_close(coarse.feats.double(), ref, **TOL)
    g = torch.randn(coarse.feats.shape, generator=torch.Generator().manual_seed(2))
    (coarse.feats * g).sum().backward()
    (ref * g.double()).sum().backward()
    torch.testing.assert_close(feats.grad.double(), fd.grad, **TOL)
    torch.testing.assert_close(w.grad.double(), wd.grad, **TOL)

    # inverse: back onto exactly the fine sites
    wi, bi = _weights(3, K, co, x.num_channels)
    wi.requires_grad_(True)
    yfeats = coarse.feats.detach().clone().requires_grad_(True)
    fine = inverse_conv(coarse.replace(yfeats), wi, bi, cmap, backend=backend)
    assert fine.same_sites(x)
    wid = wi.detach().double().requires_grad_(True)
    yd = yfeats.detach().double().requires_grad_(True)
    ref_i = dense_inverse_reference(coarse.replace(yd), wid, ks, stride, padding, x) + bi.double()
    torch.testing.assert_close(fine.feats.double(), ref_i, **TOL)
    gi = torch.randn(fine.feats.shape, generator=torch.Generator().manual_seed(4))
    (fine.feats * gi).sum().backward()
    (ref_i * gi.double()).sum().backward()
    torch.testing.assert_close(yfeats.grad.double(), yd.grad, **TOL)
    torch.testing.assert_close(wi.grad.double(), wid.grad, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_at_scale_under_two_threads(backend):
    """~20k voxels, repeated: spconv's unguarded CPU conv gets rows wrong here with 2 threads."""
    assert torch.get_num_threads() == 2
    x = random_sparse(7, batch_size=1, num_frames=2, shape=(40, 40, 40), density=0.15, channels=32)
    w, b = _weights(5, 27, 32, 32)
    ref = subm_conv(x, w, b, backend="torch").feats
    for _ in range(3):
        torch.testing.assert_close(subm_conv(x, w, b, backend=backend).feats, ref, rtol=1e-4, atol=1e-4)
    assert torch.get_num_threads() == 2, "the backend must restore the caller's thread setting"
