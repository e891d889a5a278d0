import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ss4d", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("ss4d")


@pytest.fixture(autouse=True)
def two_threads():
    """Run every test with 2 torch threads (CI's default), restoring the caller's setting.

    spconv's CPU conv is wrong with more than one thread; the suite must run multi-threaded to prove
    ss4d's guard works.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_dino(tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install 'ss4d[dino]')")
    config = transformers.Dinov2WithRegistersConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=14,
        image_size=56, num_register_tokens=4,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "dino")
    return tmp_path / "dino"
