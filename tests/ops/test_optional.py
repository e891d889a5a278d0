import pytest
import torch

from ss4d.ops._optional import AnyDevice, CudaPackage
from ss4d.ops.attention import attention_backends
from ss4d.ops.sparse import sparse_conv_backends
from ss4d.render import render_backends

REFERENCES = [
    (attention_backends, "naive"),
    (attention_backends, "sdpa"),
    (sparse_conv_backends, "torch"),
    (render_backends, "torch"),
]


@pytest.mark.parametrize("registry, name", REFERENCES, ids=lambda v: v if isinstance(v, str) else v.family)
def test_reference_backends_run_on_every_device(registry, name):
    backend = registry.get(name)
    assert isinstance(backend, AnyDevice) and not isinstance(backend, CudaPackage)
    for device in ("cpu", "cuda", "mps", "meta"):
        assert backend.is_available(torch.device(device))
        assert backend.unavailable_reason(torch.device(device)) == ""
        assert registry.resolve(name, device) is backend
