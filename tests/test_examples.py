"""Every example runs as a user would run it, with tiny settings. Add yours to EXAMPLES: (script, its
arguments, the files it must write under the output folder given as ``--out``)."""

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
]


@pytest.mark.parametrize(("script", "args", "expected"), EXAMPLES)
def test_example_runs(script, args, expected, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path), *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    missing = [f for f in expected if not (tmp_path / f).is_file()]
    assert not missing, (missing, run.stdout)
