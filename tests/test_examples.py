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
