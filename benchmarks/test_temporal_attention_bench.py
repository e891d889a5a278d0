"""TemporalLayer time and peak memory vs T in {8, 16, 32, 64}: windowed (8 frames, shift) vs full,
dense and sparse tokens, per available attention backend (forward, no grad).

Run: ``python -m pytest benchmarks/test_temporal_attention_bench.py
--benchmark-json=benchmarks/results/temporal_attention.json && python benchmarks/report_attention.py``.
Peak memory: the growth of the resident set's high-water mark over one forward, in a fresh process (CPU).
"""

import json
import subprocess
import sys

import pytest
import torch

from ss4d.layers import TemporalLayer
from ss4d.ops.attention import attention_backends
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

FRAMES = [8, 16, 32, 64]
DIM, HEADS, TOKENS = 256, 4, 128  # dense: 128 tokens per frame; sparse: ~128 voxels per frame
BACKENDS = [n for n in attention_backends.names() if n in attention_backends.available("cpu")]  # every registered one


def make_input(kind: str, frames: int) -> torch.Tensor | SparseTensor:
    g = torch.Generator().manual_seed(0)
    if kind == "dense":
        return torch.randn(1, frames, TOKENS, DIM, generator=g)
    # a ring of voxels that drifts: ~TOKENS voxels per frame at varying positions
    coords = []
    for t in range(frames):
        ang = torch.linspace(0, 6.2832, TOKENS + 1)[:-1]
        xyz = torch.stack([16 + 10 * ang.cos(), 16 + 10 * ang.sin(), torch.full_like(ang, t % 8)], 1).round().long()
        xyz = torch.unique(xyz, dim=0)
        coords.append(torch.cat([torch.full((len(xyz), 1), t), xyz], 1))
    c = torch.cat(coords).int()
    return SparseTensor(
        torch.randn(len(c), DIM, generator=g), c, SpacetimeLayout(1, frames), spatial_shape=(32, 32, 32)
    )


def make_layer(window: int | None, backend: str) -> TemporalLayer:
    torch.manual_seed(0)
    return TemporalLayer(DIM, num_heads=HEADS, window=window, shift=window is not None, attn_backend=backend).eval()


def peak_rss_growth_mb(kind: str, frames: int, window: int | None, backend: str) -> float:
    """Peak RSS growth (MB) over one forward in a fresh process.

    The kernel's high-water mark is reset right before the forward (``/proc/self/clear_refs`` = 5), so the
    figure is ``VmHWM - VmRSS`` across the call: the extra memory the forward needed at its peak. Large
    tensors are mmapped by the allocator and returned on free, so reuse does not hide them.
    """
    code = f"""
import torch, json
from benchmarks.test_temporal_attention_bench import make_input, make_layer
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
torch.set_num_threads({torch.get_num_threads()})
x = make_input({kind!r}, {frames}); layer = make_layer({window!r}, {backend!r})
with torch.no_grad():
    layer(make_input({kind!r}, 2))
    open("/proc/self/clear_refs", "w").write("5")
    base = status("VmRSS")
    layer(x)
    print(json.dumps(status("VmHWM") - base))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("window", [8, None], ids=["window8", "full"])
@pytest.mark.parametrize("frames", FRAMES)
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_temporal_layer(benchmark, kind, frames, window, backend):
    if backend == "naive" and window is None and frames > 32:
        pytest.skip("naive full attention at T=64 materialises an 8k x 8k score matrix per head; skipped")
    x = make_input(kind, frames)
    layer = make_layer(window, backend)
    tokens = x.num_voxels if isinstance(x, SparseTensor) else frames * TOKENS
    benchmark.group = f"temporal {kind} {'full' if window is None else 'window8'}"
    benchmark.extra_info.update(
        kind=kind,
        frames=frames,
        mode="full" if window is None else "window8",
        backend=backend,
        tokens=tokens,
        peak_mb=peak_rss_growth_mb(kind, frames, window, backend),
    )
    with torch.no_grad():
        layer(x)
        benchmark.pedantic(lambda: layer(x), rounds=5 if frames < 64 else 3, warmup_rounds=1, iterations=1)
