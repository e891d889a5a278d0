"""`torchrun --nproc_per_node 2 -m ss4d.cli train CONFIG`: two CPU processes (gloo) train every stage with DDP."""

import json
import os
import socket
import subprocess
import sys

from ss4d.data.synthetic import make_clip
from ss4d.pipelines import SS4DPipeline
from tests.training.test_run import MICRO


def test_torchrun_two_processes_train_every_stage(tmp_path):
    for seed in range(2):
        make_clip(seed, num_frames=4, resolution=8, image_size=24, num_views=2).save(
            tmp_path / "data" / f"clip_{seed:06d}"
        )
    config = tmp_path / "micro.json"
    config.write_text(json.dumps({**MICRO, "data": str(tmp_path / "data"), "out": str(tmp_path / "run")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "ss4d.cli", "train", str(config), "-q"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("structure_vae", "slat_vae", "structure_flow", "slat_flow"):
        state = json.loads((tmp_path / "run" / stage / "checkpoints" / "step_0000002" / "state.json").read_text())
        assert state["world_size"] == 2, stage
        rows = (tmp_path / "run" / stage / "log.csv").read_text().strip().splitlines()
        assert len(rows) == 2, stage  # header + the last step's row, written by rank 0 only
    SS4DPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    assert done.stdout.count("pipeline written to") == 1
