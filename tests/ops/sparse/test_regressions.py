"""Regressions found in review: dtype handling, inference mode, NaN-free accumulation."""

import torch

from ss4d.layers import RotaryEmbedding, SparseDownConv3d, TemporalLayer
from ss4d.ops.sparse import SparseTensor, spatial_downsample, strided_conv, subm_conv

from .helpers import random_sparse


def test_fp16_strided_conv_has_no_nan_even_when_feature_sums_overflow():
    x = random_sparse(0, shape=(16, 16, 16), density=0.5, channels=4)
    x16 = x.replace((x.feats.abs() * 20 + 1).half())  # sum over all features overflows fp16
    assert torch.isinf(x16.feats.sum())
    w = torch.randn(8, 4, 4).half() * 0.01
    y, _ = strided_conv(x16, w, backend="torch")
    assert not torch.isnan(y.feats).any()


def test_autocast_bfloat16_strided_conv():
    x = random_sparse(1, shape=(8, 8, 8), density=0.3, channels=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = SparseDownConv3d(16, 8)(x)
    assert y.num_channels == 8


def test_to_dtype_positionally():
    x = random_sparse(2)
    assert x.to(torch.float16).dtype == torch.float16


def test_maps_cached_in_inference_mode_serve_training():
    x = random_sparse(3, num_frames=2, shape=(6, 6, 6), density=0.4, channels=8)
    w = torch.randn(27, 8, 8, requires_grad=True)
    layer = TemporalLayer(8, num_heads=2, window=1, window_xyz=2, shift=True)
    with torch.inference_mode():
        subm_conv(x, w.detach())
        layer(x)
        spatial_downsample(x)
    feats = x.feats.clone().requires_grad_(True)
    xs = x.replace(feats)
    (subm_conv(xs, w).feats.sum() + layer(xs).feats.sum() + spatial_downsample(xs)[0].feats.sum()).backward()
    assert feats.grad is not None and w.grad is not None


def test_rope_positions_per_batch_row():
    rope = RotaryEmbedding(8, 1)
    x = torch.randn(2, 1, 2, 8)
    assert rope(x, torch.tensor([[0], [3]])).shape == x.shape


def test_coords_without_columns_raise_clearly():
    import pytest

    from ss4d.errors import CoordinateError

    with pytest.raises(CoordinateError, match=r"\[n, 4\]"):
        SparseTensor(torch.zeros(3, 1), torch.zeros(3, 0, dtype=torch.int32))
