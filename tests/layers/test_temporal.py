"""TemporalLayer properties: windows, locality, samples, RoPE, any T, sparse = dense, permutations."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

from ss4d.layers import TemporalLayer, frame_window_lengths
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

C, H = 32, 4


def _layer(**kw) -> TemporalLayer:
    torch.manual_seed(0)
    return TemporalLayer(C, num_heads=H, **kw).double().eval()


def _dense(B=1, T=8, M=3, seed=0):
    return torch.randn(B, T, M, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_frame_windows_match_the_official_examples():
    assert frame_window_lengths(32, 8, 4) == [4, 8, 8, 8, 4]
    assert frame_window_lengths(32, 8, 0) == [8, 8, 8, 8]
    assert frame_window_lengths(8, 4, 2) == [2, 4, 2]
    assert frame_window_lengths(5, None, 0) == [5]


@pytest.mark.parametrize("T", [1, 3, 8])
def test_window_covering_all_frames_equals_full(T):
    x = _dense(T=T)
    full = _layer(window=None)
    wide = _layer(window=T + 3)
    wide.load_state_dict(full.state_dict())
    torch.testing.assert_close(wide(x), full(x))


def test_locality_and_receptive_field_of_a_shifted_pair():
    x = _dense(T=8)
    y = x.clone()
    y[:, 0] += 1.0  # perturb frame 0
    plain, shifted = _layer(window=4), _layer(window=4, shift=True)
    changed = lambda a, b: [bool((a[:, t] - b[:, t]).abs().max() > 1e-9) for t in range(8)]  # noqa: E731
    one = changed(plain(x), plain(y))
    assert one == [True] * 4 + [False] * 4  # windows [0-3], [4-7]
    two = changed(shifted(x + plain(x)), shifted(y + plain(y)))
    assert two == [True] * 6 + [False] * 2  # shifted windows [0-1], [2-5], [6-7]


@pytest.mark.parametrize("window", [None, 2])
def test_windows_never_mix_samples_dense_and_sparse(window):
    layer = _layer(window=window)
    x = _dense(B=2, T=4)
    y = x.clone()
    y[1] += 1.0
    torch.testing.assert_close(layer(x)[0], layer(y)[0])
    sx = _sparse_from_dense(x)
    sy = _sparse_from_dense(y)
    n0 = int((sx.sample_index == 0).sum())
    torch.testing.assert_close(layer(sx).feats[:n0], layer(sy).feats[:n0])


def test_rope_only_relative_frames_matter():
    """Adding k to every frame index changes nothing: check through the layer's own projections."""
    layer = _layer()
    x = _dense(T=5).flatten(1, 2)[0]  # [T*M, C]
    frames = torch.arange(5).repeat_interleave(3)
    q0, k0, _ = layer.project_self(x, frames)
    q1, k1, _ = layer.project_self(x, frames + 11)
    torch.testing.assert_close(q0 @ k0.transpose(-1, -2), q1 @ k1.transpose(-1, -2))


@pytest.mark.parametrize("T", [1, 7, 64])
def test_any_frame_count_runs(T):
    layer = _layer(window=8, shift=True)
    x = _dense(T=T, M=2)
    assert layer(x).shape == x.shape
    sx = _sparse_from_dense(x)
    assert layer(sx).same_sites(sx)
    vae = _layer(window=8, window_xyz=2, shift=True)
    assert vae(sx).num_voxels == sx.num_voxels


def _sparse_from_dense(x: torch.Tensor) -> SparseTensor:
    """Dense [B, T, M, C] -> sparse with the same M voxels (x = m, y = z = 0) in every frame."""
    B, T, M, _ = x.shape
    e = torch.arange(B * T).repeat_interleave(M)
    m = torch.arange(M).repeat(B * T)
    coords = torch.stack([e, m, torch.zeros_like(m), torch.zeros_like(m)], dim=1)
    return SparseTensor(x.reshape(-1, C), coords, SpacetimeLayout(B, T), spatial_shape=(M, 1, 1))


@pytest.mark.parametrize("window,shift", [(None, False), (2, False), (2, True), (3, True)])
def test_sparse_and_dense_agree_when_frames_share_voxels(window, shift):
    layer = _layer(window=window, shift=shift)
    x = _dense(B=2, T=5, M=4)
    torch.testing.assert_close(layer(_sparse_from_dense(x)).feats, layer(x).reshape(-1, C))


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), window_xyz=st.sampled_from([None, 2, 3]))
def test_permuting_voxels_within_a_frame_permutes_the_output(seed, window_xyz):
    g = torch.Generator().manual_seed(seed)
    T, side = 4, 4
    occupied = torch.rand(T, side, side, side, generator=g) < 0.3
    idx = torch.nonzero(occupied)
    feats = torch.randn(len(idx), C, generator=g, dtype=torch.float64)
    x = SparseTensor(feats, idx.int(), SpacetimeLayout(1, T), spatial_shape=(side,) * 3)
    perm = torch.argsort(idx[:, 0] * 10_000 + torch.randperm(len(idx), generator=g))  # shuffle within frames
    y = SparseTensor(feats[perm], idx[perm].int(), SpacetimeLayout(1, T), spatial_shape=(side,) * 3)
    layer = _layer(window=2, shift=True, window_xyz=window_xyz)
    torch.testing.assert_close(layer(y).feats, layer(x).feats[perm])


def test_insert_mode_is_zero_at_init_and_has_a_norm():
    layer = TemporalLayer(C, num_heads=H, mode="insert")
    assert torch.count_nonzero(layer(_dense().float())) == 0
    assert {"norm.weight", "to_qkv.weight", "to_out.weight"} <= set(layer.state_dict())


def test_expand_mode_uses_the_official_parameter_names():
    layer = TemporalLayer(C, num_heads=H, qk_rms_norm=True)
    assert set(layer.state_dict()) == {
        "to_qkv.weight",
        "to_qkv.bias",
        "to_out.weight",
        "to_out.bias",
        "q_rms_norm.gamma",
        "k_rms_norm.gamma",
    }


@pytest.mark.parametrize("kw,match", [({"window": 0}, "window"), ({"shift": True}, "shift"), ({"mode": "x"}, "mode")])
def test_bad_configuration(kw, match):
    # an unknown `mode` trips the Literal annotation first under the test suite's type checking
    with pytest.raises((ValueError, TypeCheckError), match=match):
        TemporalLayer(C, num_heads=H, **kw)


def test_dense_input_must_be_4d():
    with pytest.raises((ValueError, TypeCheckError), match=r"\[B, T, M, C\]|'x'"):
        _layer()(torch.randn(2, 3, C, dtype=torch.float64))
