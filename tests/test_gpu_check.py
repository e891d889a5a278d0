"""benchmarks/gpu_check.py runs end to end with --tiny on CPU (so the GPU check cannot rot)."""

import re

from benchmarks.gpu_check import ellipsoid_coords, main


def test_gpu_check_tiny_writes_every_table(tmp_path):
    out = tmp_path / "gpu.md"
    assert main(["--tiny", "--out", str(out)]) == 0
    text = out.read_text()
    for stage in ("condition", "structure", "slat", "decode"):
        assert re.search(rf"\| {stage} \| \d+\.\d\d \| n/a \|", text), stage
    assert re.search(r"\| sdpa \| [\d.]+ \| [\d.]+ \| 1\.00x / 1\.00x \|", text)
    assert re.search(r"\| naive \| [\d.]+ \| [\d.]+ \| [\d.]+x / [\d.]+x \|", text)
    assert re.search(r"\| torch \| [\d.]+ \| [\d.]+x \|", text)


def test_released_size_structure_has_a_realistic_voxel_count():
    coords = ellipsoid_coords(3, 64, (20.0, 16.0, 15.0), "cpu")
    counts = coords[:, 0].bincount()
    assert counts.shape == (3,) and ((counts >= 15_000) & (counts <= 25_000)).all()
    assert (coords[:, 1:] >= 0).all() and (coords[:, 1:] < 64).all()
    assert (coords[1:, 0] >= coords[:-1, 0]).all()  # grouped by frame


def test_released_sizes_build_on_the_meta_device():
    """The GPU check's released-size pipeline is consistent and has the released parameter counts."""
    import pytest
    import torch

    pytest.importorskip("transformers")
    from benchmarks.gpu_check import released_pipeline

    pipe = released_pipeline(torch.device("meta"), torch.bfloat16)
    names = ("condition_encoder", "structure_flow", "slat_flow", "slat_decoder", "structure_decoder")
    millions = {n: round(sum(p.numel() for p in getattr(pipe, n).parameters()) / 1e6, 1) for n in names}
    assert millions == {"condition_encoder": 304.4, "structure_flow": 555.5, "slat_flow": 644.5,
                        "slat_decoder": 85.4, "structure_decoder": 73.7}  # fmt: skip
    assert pipe.structure_flow.dtype == torch.bfloat16
