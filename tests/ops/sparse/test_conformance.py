"""The packaged conformance check (ss4d.ops.sparse.conformance) over every registered backend, and that it
catches a wrong backend."""

import pytest
import torch

from ss4d.ops.sparse import sparse_conv_backends
from ss4d.ops.sparse.backends import TorchBackend
from ss4d.ops.sparse.conformance import ConformanceFailure, check_sparse_conv_backend

from .helpers import backend_params


@pytest.mark.parametrize("backend", backend_params())
def test_every_registered_backend_conforms(backend):
    assert check_sparse_conv_backend(backend) == 32


class _OffByOne(TorchBackend):
    name = "off-by-one"

    def submanifold(self, x, weight, kernel_size, dilation):
        out = super().submanifold(x, weight, kernel_size, dilation)
        return out + (out.shape[0] > 1)  # right on a single voxel and on empty tensors only


def test_a_wrong_backend_fails_and_never_joins_auto_without_a_priority():
    sparse_conv_backends.register(_OffByOne())
    try:
        assert "off-by-one" not in sparse_conv_backends.priority("cpu")
        assert sparse_conv_backends.resolve("auto", "cpu").name == "torch"
        with pytest.raises(ConformanceFailure, match="off-by-one.*random subm.*output"):
            check_sparse_conv_backend("off-by-one")
    finally:
        sparse_conv_backends.unregister("off-by-one")
    assert "off-by-one" not in sparse_conv_backends.names()


def test_a_registered_backend_joins_auto_by_priority():
    class Eager(TorchBackend):
        name = "eager"

    sparse_conv_backends.register(Eager(), priority={"cpu": 100})
    try:
        assert sparse_conv_backends.priority("cpu")[0] == "eager"
        assert sparse_conv_backends.resolve("auto", torch.device("cpu")).name == "eager"
    finally:
        sparse_conv_backends.unregister("eager")
    assert sparse_conv_backends.resolve("auto", "cpu").name == "torch"
