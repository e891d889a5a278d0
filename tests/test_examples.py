"""Every example runs as a user would run it, with tiny settings (each fails loudly if its result is wrong).

Add yours to EXAMPLES: (script, its arguments, glob patterns of the files it must write under the output
folder given as ``--out``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = [
    pytest.param(
        "custom_scheduler.py",
        ["--steps", "2", "--frames", "2"],
        ["pipeline/model_index.json", "pipeline/slat_scheduler/scheduler_config.json", "result/frame_0001.ply"],
        id="custom_scheduler",
    ),
    pytest.param(
        "custom_temporal_layer.py", ["--frames", "2", "--steps", "2"], ["**/model.safetensors"], id="custom_temporal"
    ),
    pytest.param(
        "custom_compnet_variant.py", ["--frames", "2", "--steps", "2"], ["**/model.safetensors"], id="custom_compnet"
    ),
    pytest.param("custom_sparse_backend.py", ["--frames", "2"], ["**/model.safetensors"], id="custom_backend"),
]


@pytest.mark.parametrize(("script", "args", "expected"), EXAMPLES)
def test_example_runs(script, args, expected, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", str(out), *args],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    missing = [pattern for pattern in expected if not any(p.is_file() for p in out.glob(pattern))]
    assert not missing, (missing, run.stdout[-2000:])


def test_preview_image_stacks_every_nth_preview_row():
    """examples/make_preview_image.py (the README's preview): every ``every``-th row of render_preview, top to
    bottom, for the same seed."""
    import numpy as np
    import torch

    from ss4d.pipelines import build_tiny_pipeline
    from ss4d.render.preview import render_preview

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from make_preview_image import preview_image
    finally:
        sys.path.remove(str(ROOT / "examples"))
    pipe = build_tiny_pipeline(seed=0, steps=2)
    clip = ROOT / "examples" / "clips" / "bouncing_ball.gif"
    image = np.asarray(preview_image(pipe, clip, every=2, size=24, steps=2, seed=5, max_frames=5))
    assert image.shape == (3 * 24, 3 * 24, 3)  # frames 0, 2, 4
    out = pipe(clip, num_inference_steps=2, generator=torch.Generator().manual_seed(5), max_frames=5, progress=False)
    rows = render_preview(out.gaussians, out.coords, out.images, out.resolution, size=24)
    expected = (rows[[0, 2, 4]].permute(0, 2, 3, 1).reshape(-1, 3 * 24, 3).numpy() * 255).round()
    assert np.abs(image.astype(np.float64) - expected).max() <= 1
