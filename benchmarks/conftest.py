import torch


def pytest_configure(config):
    # Benchmarks run with the machine's default thread count (2 on CI-like machines); spconv's CPU path
    # drops to 1 thread internally because it is wrong with more (see ss4d.ops.sparse.backends.spconv_backend).
    torch.set_num_threads(max(torch.get_num_threads(), 1))
