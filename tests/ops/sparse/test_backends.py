import subprocess
import sys

import pytest
import torch
from jaxtyping import TypeCheckError

from ss4d.errors import BackendUnavailableError, UnknownBackendError
from ss4d.ops._optional import require
from ss4d.ops.registry import BackendRegistry
from ss4d.ops.sparse import SparseTensor, sparse_conv_backends, strided_conv, subm_conv
from ss4d.ops.sparse.backends import TorchBackend

from .helpers import random_sparse


def test_unknown_backend_lists_known_names():
    x = random_sparse(0)
    with pytest.raises(UnknownBackendError, match="known: .*spconv.*torch"):
        subm_conv(x, torch.randn(27, 4, 4), backend="spconvv")


def test_unavailable_backend_raises_with_install_hint():
    x = random_sparse(0)
    with pytest.raises(BackendUnavailableError, match="pip install git\\+https://github.com/mit-han-lab/torchsparse"):
        subm_conv(x, torch.randn(27, 4, 4), backend="torchsparse")


def test_missing_module_raises_backend_unavailable():
    with pytest.raises(BackendUnavailableError, match="pip install foo"):
        require("ss4d_no_such_module", hint="pip install foo")


class _Missing:
    name = "missing"
    install_hint = "pip install missing-kernels"

    def is_available(self, device):
        return False

    def unavailable_reason(self, device):
        return "not installed."


def test_registry_resolution_rules():
    reg = BackendRegistry("demo", fallback="torch")
    reg.register(TorchBackend(), priority={"cpu": 1})
    reg.register(_Missing(), priority={"cpu": 2})
    assert reg.priority("cpu") == ["missing", "torch"] and reg.priority("cuda") == []
    with pytest.raises(ValueError, match="already registered"):
        reg.register(TorchBackend())
    assert reg.resolve("auto", "cpu").name == "torch"  # skips the unavailable preferred one
    with pytest.raises(BackendUnavailableError, match="not installed. pip install missing-kernels"):
        reg.resolve("missing", "cpu")
    with reg.use("torch"):
        assert reg.resolve(None, "cpu").name == "torch"
    with pytest.raises(UnknownBackendError), reg.use("nope"):
        pass
    assert reg.available("cpu") == ["torch"]


def test_sparse_conv_auto_priorities():
    assert sparse_conv_backends.priority("cuda") == ["spconv", "torchsparse", "torch"]
    assert sparse_conv_backends.priority("cpu") == ["torch"]


@pytest.mark.skipif("spconv" not in sparse_conv_backends.available("cpu"), reason="spconv not installed")
def test_scope_overrides_auto_but_not_explicit_names():
    assert sparse_conv_backends.resolve("auto", "cpu").name == "torch"
    with sparse_conv_backends.use("spconv"):
        assert sparse_conv_backends.resolve("auto", "cpu").name == "spconv"
        assert sparse_conv_backends.resolve("torch", "cpu").name == "torch"
        with sparse_conv_backends.use("torch"):
            assert sparse_conv_backends.resolve("auto", "cpu").name == "torch"
        assert sparse_conv_backends.resolve("auto", "cpu").name == "spconv"
    assert sparse_conv_backends.resolve("auto", "cpu").name == "torch"


@pytest.mark.parametrize(
    "weight,bias,kwargs,match",
    [
        (torch.randn(27, 5, 4), None, {}, "input has 4 channels but `weight` expects 5"),
        (torch.randn(26, 4, 4), None, {}, r"\[K=27, c_in, c_out\]"),
        (torch.randn(8, 4, 4), None, {"kernel_size": 2}, "odd kernel"),
        (torch.randn(27, 4, 4, dtype=torch.float64), None, {}, "float64"),
    ],
)
def test_subm_conv_input_errors(weight, bias, kwargs, match):
    with pytest.raises(ValueError, match=match):
        subm_conv(random_sparse(0), weight, bias, **kwargs)


def test_subm_conv_bias_shape_error():
    # Under the test suite's jaxtyping hook the shape annotation fires first; without it, our ValueError.
    with pytest.raises((ValueError, TypeCheckError), match="bias"):
        subm_conv(random_sparse(0), torch.randn(27, 4, 4), torch.randn(3))


def test_strided_conv_rejects_temporal_kernel():
    with pytest.raises(ValueError, match="spatial"):
        strided_conv(random_sparse(0, num_frames=2), torch.randn(16, 4, 4), kernel_size=(2, 2, 2, 2))


def test_import_ss4d_does_not_import_optional_backends():
    code = (
        "import sys, ss4d, ss4d.ops, ss4d.layers; "
        "print(any(m.startswith(('spconv', 'torchsparse')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif("spconv" not in sparse_conv_backends.available("cpu"), reason="spconv not installed")
def test_spconv_eval_mode_with_bias_works():
    """spconv's CPU build refuses a biased conv in eval mode; ss4d adds the bias itself."""
    from ss4d.layers import SparseConv3d

    x = random_sparse(0, shape=(6, 6, 6), density=0.4)
    conv = SparseConv3d(4, 5, backend="spconv").eval()
    ref = SparseConv3d(4, 5, backend="torch").eval()
    ref.load_state_dict(conv.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(conv(x).feats, ref(x).feats, rtol=1e-5, atol=1e-5)


def test_cuda_device_sparse_tensor_moves():
    x = random_sparse(0)
    y = x.to(dtype=torch.float64)
    assert isinstance(y, SparseTensor)


@pytest.mark.cuda
@pytest.mark.parametrize("backend", sparse_conv_backends.names())
def test_subm_conv_cuda_matches_cpu(backend):
    if backend not in sparse_conv_backends.available("cuda"):
        pytest.skip(f"{backend} unavailable on CUDA")
    x = random_sparse(0, num_frames=2, shape=(10, 10, 10), density=0.3, channels=16)
    w = torch.randn(27, 16, 8)
    ref = subm_conv(x, w, backend="torch").feats
    got = subm_conv(x.to("cuda"), w.cuda(), backend=backend).feats.cpu()
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-3)
