import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ss4d.errors import CoordinateError, MappingMismatchError
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, subm_conv

from .helpers import random_sparse, sparse_tensors


def _coords(rows):
    return torch.tensor(rows, dtype=torch.int32)


class TestConstruction:
    def test_groups_rows_by_entry_stably(self):
        coords = _coords([[1, 0, 0, 0], [0, 2, 2, 2], [1, 1, 1, 1], [0, 0, 0, 1]])
        feats = torch.arange(4.0).unsqueeze(1)
        x = SparseTensor(feats, coords, SpacetimeLayout(2))
        assert x.coords[:, 0].tolist() == [0, 0, 1, 1]
        assert x.feats.squeeze(1).tolist() == [1.0, 3.0, 0.0, 2.0]  # within an entry, input order kept

    def test_default_layout_and_shape(self):
        x = SparseTensor(torch.zeros(2, 1), _coords([[0, 1, 2, 3], [2, 0, 0, 0]]))
        assert x.layout == SpacetimeLayout(3, 1)
        assert x.spatial_shape == (2, 3, 4)

    def test_int64_coords_are_stored_as_int32(self):
        x = SparseTensor(torch.zeros(1, 1), torch.tensor([[0, 1, 1, 1]]))
        assert x.coords.dtype == torch.int32

    def test_duplicate_coords_raise(self):
        with pytest.raises(CoordinateError, match="duplicate voxel coordinates"):
            SparseTensor(torch.zeros(3, 1), _coords([[0, 1, 1, 1], [0, 2, 2, 2], [0, 1, 1, 1]]))

    def test_same_xyz_in_different_entries_is_fine(self):
        x = SparseTensor(torch.zeros(2, 1), _coords([[0, 1, 1, 1], [1, 1, 1, 1]]), SpacetimeLayout(1, 2))
        assert x.num_voxels == 2

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
    def test_non_integer_coords_raise(self, dtype):
        with pytest.raises(TypeError, match="integer tensor"):
            SparseTensor(torch.zeros(1, 1), torch.zeros(1, 4, dtype=dtype))

    def test_integer_feats_raise(self):
        with pytest.raises(TypeError, match="floating-point"):
            SparseTensor(torch.zeros(1, 1, dtype=torch.int64), _coords([[0, 0, 0, 0]]))

    def test_negative_coords_raise(self):
        with pytest.raises(CoordinateError, match=">= 0"):
            SparseTensor(torch.zeros(1, 1), _coords([[0, -1, 0, 0]]))

    def test_entry_outside_layout_raises(self):
        with pytest.raises(CoordinateError, match="outside SpacetimeLayout"):
            SparseTensor(torch.zeros(1, 1), _coords([[4, 0, 0, 0]]), SpacetimeLayout(2, 2))

    def test_coords_outside_spatial_shape_raise(self):
        with pytest.raises(CoordinateError, match="outside spatial_shape"):
            SparseTensor(torch.zeros(1, 1), _coords([[0, 4, 0, 0]]), spatial_shape=(4, 4, 4))

    @pytest.mark.parametrize(
        "feats,coords,match",
        [
            (torch.zeros(2, 1), _coords([[0, 0, 0, 0]]), "rows"),
            (torch.zeros(1, 1), _coords([[0, 0, 0]]), r"\[n, 4\]"),
            (torch.zeros(1), _coords([[0, 0, 0, 0]]), r"\[n, c\]"),
        ],
    )
    def test_shape_errors(self, feats, coords, match):
        with pytest.raises(CoordinateError, match=match):
            SparseTensor(feats, coords)

    @pytest.mark.parametrize("bad,error", [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
    def test_bad_layout(self, bad, error):
        with pytest.raises(error):
            SpacetimeLayout(bad, 1)
        with pytest.raises(error):
            SpacetimeLayout(1, bad)

    def test_empty(self):
        x = SparseTensor(torch.zeros(0, 3), torch.zeros(0, 4, dtype=torch.int32), SpacetimeLayout(2, 3))
        assert x.num_voxels == 0 and x.spatial_shape == (1, 1, 1)
        assert x.to_dense().shape == (2, 3, 3, 1, 1, 1)


class TestImmutabilityAndFeatures:
    def test_cannot_set_attributes(self):
        x = random_sparse(0)
        with pytest.raises(AttributeError, match=r"immutable.*'feats'.*\.replace\(feats\)"):
            x.feats = x.feats * 2  # type: ignore[misc]
        with pytest.raises(AttributeError, match="SparseSites is immutable.*'coords'"):
            x.sites.coords = x.coords  # type: ignore[misc]
        assert not hasattr(x, "__dict__") and not hasattr(x.sites, "__dict__")  # slots only: no new attributes
        with pytest.raises(AttributeError, match="immutable"):
            x.extra = 1  # type: ignore[attr-defined]

    def test_replace_shares_sites_and_kernel_maps(self):
        x = random_sparse(0, shape=(6, 6, 6), density=0.5)
        w = torch.randn(27, 4, 4)
        subm_conv(x, w, backend="torch")
        y = x.replace(torch.randn(x.num_voxels, 8))
        assert y.sites is x.sites and y.num_channels == 8
        assert ("subm", (1, 3, 3, 3), 1) in y.sites._memo

    def test_replace_checks_rows(self):
        x = random_sparse(0)
        with pytest.raises(CoordinateError, match="rows|shape"):
            x.replace(torch.zeros(x.num_voxels + 1, 2))

    def test_elementwise_ops(self):
        x = random_sparse(1, channels=3)
        y = x.replace(torch.randn_like(x.feats))
        torch.testing.assert_close((x + y).feats, x.feats + y.feats)
        torch.testing.assert_close((x - 1).feats, x.feats - 1)
        torch.testing.assert_close((2 * x).feats, 2 * x.feats)
        torch.testing.assert_close((x * torch.tensor([1.0, 2.0, 3.0])).feats, x.feats * torch.tensor([1.0, 2.0, 3.0]))
        torch.testing.assert_close((-x / 2).feats, -x.feats / 2)

    def test_elementwise_needs_same_sites(self):
        a, b = random_sparse(1, density=0.5), random_sparse(2, density=0.5)
        with pytest.raises(MappingMismatchError, match="identical coordinates"):
            a + b

    def test_elementwise_rejects_per_entry_tensor(self):
        x = random_sparse(1, batch_size=2, channels=3, density=0.6)
        with pytest.raises(CoordinateError, match="per_entry"):
            x + torch.zeros(2, 3)
        per = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
        expanded = x.per_entry(per)
        assert torch.equal(expanded[:, 0], x.entry_index.float() + 1)

    def test_to_dtype_keeps_sites(self):
        x = random_sparse(0)
        y = x.to(dtype=torch.float64)
        assert y.dtype == torch.float64 and y.sites is x.sites


class TestFramesAndSamples:
    def test_index_properties(self):
        x = random_sparse(3, batch_size=2, num_frames=3, density=0.5)
        e = x.coords[:, 0]
        assert torch.equal(x.frame_index, e % 3) and torch.equal(x.sample_index, e // 3)

    @given(x=sparse_tensors(max_channels=3))
    def test_unbind_and_stack_frames_round_trip(self, x):
        frames = x.unbind_frames()
        assert len(frames) == x.layout.num_frames
        for t, f in enumerate(frames):
            assert f.layout == SpacetimeLayout(x.layout.batch_size, 1)
            assert f.num_voxels == int((x.frame_index == t).sum())
        back = SparseTensor.stack_frames(frames)
        assert torch.equal(back.coords, x.coords) and torch.equal(back.feats, x.feats)

    @given(x=sparse_tensors(max_channels=3))
    def test_samples_round_trip(self, x):
        parts = x.unbind_samples()
        assert all(p.layout == SpacetimeLayout(1, x.layout.num_frames) for p in parts)
        back = SparseTensor.cat_samples(parts)
        assert back.layout == x.layout
        assert torch.equal(back.coords, x.coords) and torch.equal(back.feats, x.feats)

    def test_frame_index_errors(self):
        x = random_sparse(0, num_frames=2)
        with pytest.raises(IndexError):
            x.frame(2)
        with pytest.raises(IndexError):
            x.sample(1)

    def test_cat_samples_rejects_mismatched_frames(self):
        with pytest.raises(ValueError, match="T="):
            SparseTensor.cat_samples([random_sparse(0, num_frames=2), random_sparse(0, num_frames=3)])


class TestDense:
    @given(
        seed=st.integers(0, 1000),
        B=st.integers(1, 2),
        T=st.integers(1, 4),
        C=st.integers(1, 4),
        side=st.integers(1, 5),
        density=st.sampled_from([0.0, 0.2, 1.0]),
    )
    def test_to_dense_from_dense_round_trip(self, seed, B, T, C, side, density):
        g = torch.Generator().manual_seed(seed)
        dense = torch.randn(B, T, C, side, side, side, generator=g)
        dense = dense * (torch.rand(B, T, 1, side, side, side, generator=g) < density)
        x = SparseTensor.from_dense(dense)
        assert torch.equal(x.to_dense(), dense)
        assert x.layout == SpacetimeLayout(B, T)

    @given(x=sparse_tensors(max_channels=3))
    def test_from_dense_to_dense_keeps_sites_with_mask(self, x):
        dense = x.to_dense()
        mask = torch.zeros(x.layout.batch_size, x.layout.num_frames, *x.spatial_shape, dtype=torch.bool)
        c = x.coords.long()
        T = x.layout.num_frames
        mask[c[:, 0] // T, c[:, 0] % T, c[:, 1], c[:, 2], c[:, 3]] = True
        y = SparseTensor.from_dense(dense, mask)
        # from_dense orders rows by (entry, x, y, z); compare as sets of rows
        key = lambda t: sorted(zip(t.coords.tolist(), t.feats.tolist(), strict=True))  # noqa: E731
        assert key(y) == key(x)

    def test_from_dense_5d_is_one_frame(self):
        x = SparseTensor.from_dense(torch.ones(2, 3, 2, 2, 2))
        assert x.layout == SpacetimeLayout(2, 1) and x.num_voxels == 16

    def test_to_dense_is_differentiable(self):
        x = random_sparse(0, density=0.5)
        f = x.feats.clone().requires_grad_(True)
        x.replace(f).to_dense().sum().backward()
        assert torch.equal(f.grad, torch.ones_like(f))
