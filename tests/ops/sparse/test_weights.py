import pytest
import torch

from ss4d.ops.sparse import (
    SpacetimeLayout,
    SparseTensor,
    sparse_conv_backends,
    subm_conv,
    weight_from_dense,
    weight_from_spconv,
    weight_from_torchsparse,
    weight_to_dense,
    weight_to_spconv,
    weight_to_torchsparse,
)

from .helpers import random_sparse


@pytest.mark.parametrize("kernel", [(3, 3, 3), (1, 3, 3, 3), (3, 1, 1, 1), (3, 3, 3, 3), (1, 1, 1)])
def test_round_trips(kernel):
    K = 1
    for k in kernel:
        K *= k
    w = torch.randn(K, 4, 5)
    assert torch.equal(weight_from_spconv(weight_to_spconv(w, kernel)), w)
    assert torch.equal(weight_from_dense(weight_to_dense(w, kernel)), w)
    if len(kernel) == 3 or kernel[0] == 1:
        assert torch.equal(weight_from_torchsparse(weight_to_torchsparse(w, kernel), kernel), w)


def test_torchsparse_order_is_x_fastest():
    w = torch.arange(27.0).reshape(27, 1, 1)  # ss4d: index = (x * 3 + y) * 3 + z
    ts = weight_to_torchsparse(w, (3, 3, 3)).flatten()
    x, y, z = 2, 0, 1
    assert ts[x + 3 * (y + 3 * z)] == (x * 3 + y) * 3 + z


spconv_only = pytest.mark.skipif("spconv" not in sparse_conv_backends.available("cpu"), reason="spconv not installed")


@spconv_only
def test_spconv_module_weights_convert_exactly():
    """A real spconv SubMConv3d / SubMConv4d (1 thread) equals ss4d's conv with converted weights."""
    import spconv.pytorch as spconv

    x = random_sparse(4, batch_size=2, num_frames=3, shape=(6, 7, 5), density=0.3, channels=6)
    torch.set_num_threads(1)
    m3 = spconv.SubMConv3d(6, 4, 3, bias=False)
    torch.nn.init.normal_(m3.weight)
    st3 = spconv.SparseConvTensor(x.feats, x.coords, list(x.spatial_shape), x.layout.num_entries)
    ref3 = m3(st3).features
    T = x.layout.num_frames
    idx4 = torch.cat([x.coords[:, :1] // T, x.coords[:, :1] % T, x.coords[:, 1:]], 1).int()
    m4 = spconv.SubMConv4d(6, 4, (3, 1, 1, 1), bias=False)
    torch.nn.init.normal_(m4.weight)
    ref4 = m4(spconv.SparseConvTensor(x.feats, idx4, [T, *x.spatial_shape], x.layout.batch_size)).features
    torch.set_num_threads(2)
    got3 = subm_conv(x, weight_from_spconv(m3.weight.detach()), kernel_size=3, backend="torch").feats
    got4 = subm_conv(x, weight_from_spconv(m4.weight.detach()), kernel_size=(3, 1, 1, 1), backend="torch").feats
    torch.testing.assert_close(got3, ref3, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got4, ref4, rtol=1e-4, atol=1e-4)


def test_weight_layout_orientation_on_a_line():
    """Offset index j of a (1,1,3) kernel reads z + j - 1 (cross-correlation)."""
    coords = torch.tensor([[0, 0, 0, z] for z in range(3)])
    x = SparseTensor(torch.tensor([[1.0], [10.0], [100.0]]), coords, SpacetimeLayout(1))
    w = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1)  # only the "z - 1" tap
    out = subm_conv(x, w, kernel_size=(1, 1, 3), backend="torch")
    assert out.feats.squeeze(1).tolist() == [0.0, 1.0, 10.0]
