from collections import defaultdict

import pytest
import torch
from hypothesis import given
from jaxtyping import TypeCheckError

from ss4d.errors import FrameCountError, MappingMismatchError
from ss4d.ops.sparse import (
    SpacetimeLayout,
    SparseTensor,
    spatial_downsample,
    spatial_upsample,
    temporal_downsample,
    temporal_upsample,
)

from .helpers import random_sparse, sparse_tensors


def _pool_reference(x: SparseTensor, parent_of, pooling: str) -> dict:
    """Explicit dict-of-lists pooling: coarse coordinate -> pooled feature."""
    groups = defaultdict(list)
    for c, f in zip(x.coords.tolist(), x.feats, strict=True):
        groups[parent_of(c)].append(f)
    extra = 1 if pooling == "official" else 0
    return {k: torch.stack(v).sum(0) / (len(v) + extra) for k, v in groups.items()}


@pytest.mark.parametrize("pooling", ["mean", "official"])
@given(x=sparse_tensors(max_frames=4, max_side=7, max_channels=4))
def test_spatial_downsample_matches_reference_and_inverts(pooling, x):
    coarse, pool_map = spatial_downsample(x, 2, pooling=pooling)
    assert coarse.layout == x.layout
    assert coarse.spatial_shape == tuple(-(-s // 2) for s in x.spatial_shape)
    ref = _pool_reference(x, lambda c: (c[0], c[1] // 2, c[2] // 2, c[3] // 2), pooling)
    assert sorted(ref) == [tuple(c) for c in coarse.coords.tolist()]  # union of parents, rows sorted
    for c, f in zip(coarse.coords.tolist(), coarse.feats, strict=True):
        torch.testing.assert_close(f, ref[tuple(c)])
    up = spatial_upsample(coarse, pool_map)
    assert up.same_sites(x)  # exactly the fine coordinates, same rows, same order
    parents = {tuple(c): f for c, f in zip(coarse.coords.tolist(), coarse.feats, strict=True)}
    for c, f in zip(up.coords.tolist(), up.feats, strict=True):
        torch.testing.assert_close(f, parents[(c[0], c[1] // 2, c[2] // 2, c[3] // 2)])


def test_official_pooling_is_sum_over_n_plus_one():
    # one parent with 1 child -> x / 2; one parent with all 8 children -> sum / 9
    coords = [[0, 4, 4, 4]] + [[0, x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    feats = torch.tensor([[9.0]] + [[float(i + 1)] for i in range(8)])
    x = SparseTensor(feats, torch.tensor(coords))
    official, _ = spatial_downsample(x, pooling="official")
    mean, _ = spatial_downsample(x, pooling="mean")
    assert official.feats.squeeze(1).tolist() == [36.0 / 9, 9.0 / 2]
    assert mean.feats.squeeze(1).tolist() == [36.0 / 8, 9.0]


@pytest.mark.parametrize("pooling", ["mean", "official"])
@given(x=sparse_tensors(max_frames=8, max_side=5, max_channels=3))
def test_temporal_downsample_merges_frame_pairs(pooling, x):
    T = x.layout.num_frames
    if T % 2:
        with pytest.raises(FrameCountError, match="even frame count"):
            temporal_downsample(x, pooling=pooling)
        return
    coarse, pool_map = temporal_downsample(x, pooling=pooling)
    assert coarse.layout == SpacetimeLayout(x.layout.batch_size, T // 2)
    ref = _pool_reference(x, lambda c: (c[0] // 2, c[1], c[2], c[3]), pooling)
    assert sorted(ref) == [tuple(c) for c in coarse.coords.tolist()]
    for c, f in zip(coarse.coords.tolist(), coarse.feats, strict=True):
        torch.testing.assert_close(f, ref[tuple(c)])
    up = temporal_upsample(coarse, pool_map)
    assert up.same_sites(x)  # no voxel created in the other frame of a pair


def test_temporal_pairs_never_cross_samples():
    # 2 samples x 2 frames, the same voxel everywhere: each sample merges its own two frames
    coords = torch.tensor([[e, 0, 0, 0] for e in range(4)])
    x = SparseTensor(torch.tensor([[1.0], [3.0], [10.0], [30.0]]), coords, SpacetimeLayout(2, 2))
    coarse, _ = temporal_downsample(x, pooling="official")
    assert coarse.coords[:, 0].tolist() == [0, 1]
    assert coarse.feats.squeeze(1).tolist() == pytest.approx([4.0 / 3, 40.0 / 3])
    single = SparseTensor(torch.tensor([[6.0]]), torch.tensor([[1, 0, 0, 0]]), SpacetimeLayout(1, 2))
    assert temporal_downsample(single, pooling="official")[0].feats.item() == 3.0


def test_upsample_rejects_foreign_tensor():
    x = random_sparse(0, num_frames=2, shape=(6, 6, 6), density=0.4)
    coarse, spatial_map = spatial_downsample(x)
    other = random_sparse(1, num_frames=2, shape=(3, 3, 3), density=0.9)
    with pytest.raises(MappingMismatchError, match="coarse sites"):
        spatial_upsample(other, spatial_map)
    _, temporal_map = temporal_downsample(x)
    with pytest.raises(MappingMismatchError, match="temporal PoolMap|spatial PoolMap"):
        spatial_upsample(coarse, temporal_map)


def test_bad_pooling_name():
    # Under the test suite's jaxtyping hook the Literal annotation fires first; without it, our ValueError.
    with pytest.raises((ValueError, TypeCheckError), match="official"):
        spatial_downsample(random_sparse(0), pooling="max")  # type: ignore[arg-type]


def test_pooling_gradients():
    x = random_sparse(2, num_frames=2, shape=(4, 4, 4), density=0.5, channels=2).to(dtype=torch.float64)
    feats = x.feats.clone().requires_grad_(True)

    def f(v):
        coarse, m = spatial_downsample(x.replace(v), pooling="official")
        packed, tm = temporal_downsample(coarse)
        return spatial_upsample(temporal_upsample(packed, tm), m).feats

    assert torch.autograd.gradcheck(f, (feats,))
