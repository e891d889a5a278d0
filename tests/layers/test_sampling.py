import pytest
import torch

from ss4d.errors import FrameCountError
from ss4d.layers import SpatialDownsample, SpatialUpsample, TemporalPack, TemporalUnpack
from ss4d.ops.sparse import SpacetimeLayout

from ..ops.sparse.helpers import random_sparse


def test_design_imports_work():
    from ss4d.layers import FactorizedSparseConv4d, TemporalLayer  # noqa: F401  (DESIGN §1)

    layer = TemporalLayer(dim=512, num_heads=8, window=8, shift=True)
    assert layer.frame_shift == 4


def test_sparse_pack_unpack_round_trip():
    x = random_sparse(0, batch_size=2, num_frames=4, shape=(6, 6, 6), density=0.3)
    packed, pmap = TemporalPack(pooling="official")(x)
    assert packed.layout == SpacetimeLayout(2, 2)
    assert TemporalUnpack()(packed, pmap).same_sites(x)
    coarse, smap = SpatialDownsample()(x)
    assert SpatialUpsample()(coarse, smap).same_sites(x)
    with pytest.raises(ValueError, match="map"):
        TemporalUnpack()(packed)


def test_dense_pack_is_pair_mean_and_odd_t_raises():
    x = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 2, 3)
    packed = TemporalPack()(x)
    assert packed[0, :, 0, 0].tolist() == [0.5, 2.5]
    assert TemporalUnpack()(packed).shape == x.shape
    with pytest.raises(FrameCountError, match="even"):
        TemporalPack()(torch.zeros(1, 3, 2, 3))
