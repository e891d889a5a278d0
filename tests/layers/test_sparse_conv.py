import pytest
import torch

from ss4d.errors import UnknownBackendError
from ss4d.layers import (
    FactorizedSparseConv4d,
    SparseConv3d,
    SparseConv4d,
    SparseDownConv3d,
    SparseInverseConv3d,
    SparseSubMConv,
    SparseTemporalConv1d,
    set_sparse_conv_backend,
)
from ss4d.ops.sparse import subm_conv

from ..ops.sparse.helpers import random_sparse


def test_layers_match_functional_ops_and_keep_sites():
    x = random_sparse(0, batch_size=2, num_frames=4, shape=(6, 6, 6), density=0.3, channels=4)
    for layer, ks in [
        (SparseConv3d(4, 6), (1, 3, 3, 3)),
        (SparseTemporalConv1d(4, 6), (3, 1, 1, 1)),
        (SparseConv4d(4, 6), (3, 3, 3, 3)),
    ]:
        assert layer.weight.shape == (ks[0] * ks[1] * ks[2] * ks[3], 4, 6)
        out = layer(x)
        assert out.same_sites(x) and out.num_channels == 6
        torch.testing.assert_close(out.feats, subm_conv(x, layer.weight, layer.bias, kernel_size=ks).feats)


def test_factorized_4d_is_spatial_then_temporal():
    x = random_sparse(1, num_frames=3, shape=(5, 5, 5), density=0.4, channels=3)
    layer = FactorizedSparseConv4d(3, 5)
    torch.testing.assert_close(layer(x).feats, layer.temporal(layer.spatial(x)).feats)
    assert not torch.equal(layer(x).feats, layer.spatial(x).feats)


def test_down_and_inverse_layers_round_trip_sites():
    x = random_sparse(2, num_frames=2, shape=(8, 8, 8), density=0.2, channels=4)
    down, up = SparseDownConv3d(4, 8), SparseInverseConv3d(8, 4)
    coarse, conv_map = down(x)
    assert coarse.spatial_shape == (4, 4, 4)
    fine = up(coarse, conv_map)
    assert fine.same_sites(x)
    with pytest.raises(ValueError, match="kernel"):
        SparseInverseConv3d(8, 4, kernel_size=3)(coarse, conv_map)


def test_backend_is_module_state_not_state_dict():
    model = torch.nn.Sequential(SparseConv3d(4, 4), SparseTemporalConv1d(4, 4))
    set_sparse_conv_backend(model, "torch")
    assert all(m.backend == "torch" for m in model)
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    with pytest.raises(UnknownBackendError):
        set_sparse_conv_backend(model, "cuda-magic")


def test_even_submanifold_kernel_rejected():
    with pytest.raises(ValueError, match="odd"):
        SparseConv3d(4, 4, kernel_size=2)


def test_one_optimizer_step_changes_every_parameter():
    x = random_sparse(3, num_frames=2, shape=(5, 5, 5), density=0.5, channels=4)
    model = FactorizedSparseConv4d(4, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x).feats.square().mean().backward()
    opt.step()
    for k, v in model.state_dict().items():
        assert not torch.equal(v, before[k]), k


ALL_SPARSE_CONVS = [
    SparseSubMConv,
    SparseConv3d,
    SparseTemporalConv1d,
    SparseConv4d,
    SparseDownConv3d,
    SparseInverseConv3d,
    FactorizedSparseConv4d,
]


def _convs(layer: torch.nn.Module) -> list[torch.nn.Module]:
    return [layer.spatial, layer.temporal] if isinstance(layer, FactorizedSparseConv4d) else [layer]


@pytest.mark.parametrize("cls", ALL_SPARSE_CONVS, ids=lambda c: c.__name__)
def test_sparse_conv_options_defaults_and_keywords(cls):
    for conv in _convs(cls(4, 6)):  # defaults: biased, "auto", torch's default device and dtype
        assert conv.bias is not None and conv.backend == "auto"
        assert conv.weight.dtype == torch.get_default_dtype() and conv.weight.device.type == "cpu"
        assert conv.bias.dtype == conv.weight.dtype
    layer = cls(4, 6, bias=False, backend="torch", device="meta", dtype=torch.float64)
    for conv in _convs(layer):
        assert conv.bias is None and conv.backend == "torch"
        assert conv.weight.dtype == torch.float64 and conv.weight.device.type == "meta"
    assert set(layer.state_dict()) == {k for k in cls(4, 6).state_dict() if not k.endswith("bias")}
    with pytest.raises(TypeError, match="bais"):
        cls(4, 6, bais=False)


def test_sparse_conv_other_defaults_unchanged():
    assert SparseSubMConv(2, 2).kernel_size == (1, 3, 3, 3) and SparseSubMConv(2, 2).dilation == 1
    assert SparseConv3d(2, 2).kernel_size == (1, 3, 3, 3)
    assert SparseTemporalConv1d(2, 2).kernel_size == (3, 1, 1, 1)
    assert SparseConv4d(2, 2).kernel_size == (3, 3, 3, 3)
    down = SparseDownConv3d(2, 2)
    assert (down.kernel_size, down.stride, down.padding) == ((1, 2, 2, 2), 2, 0)
    assert SparseInverseConv3d(2, 2).kernel_size == (1, 2, 2, 2)
    factorized = FactorizedSparseConv4d(2, 2)
    assert (factorized.spatial.kernel_size, factorized.temporal.kernel_size) == ((1, 3, 3, 3), (3, 1, 1, 1))
