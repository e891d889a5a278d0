"""The composability examples run end to end with tiny settings (each fails loudly if its result is wrong)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = [
    ("custom_temporal_layer.py", ["--frames", "2", "--steps", "2"]),
    ("custom_compnet_variant.py", ["--frames", "2", "--steps", "2"]),
    ("custom_sparse_backend.py", ["--frames", "2"]),
]


@pytest.mark.parametrize("script,args", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_runs(script, args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path / "out"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out").is_dir() and any((tmp_path / "out").rglob("model.safetensors"))
