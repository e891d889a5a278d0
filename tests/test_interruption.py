"""Kill real writers at random points (SIGKILL and SIGINT, several seeds): the output folder is always absent
or complete and loadable, never a mix, and the next writer cleans up what a killed one left behind."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ss4d.pipelines import SS4DPipeline
from ss4d.representations import load_npz, load_ply
from ss4d.utils.atomic import atomic_folder

from .pipelines.tiny import tiny_pipeline
from .test_bad_inputs import gif

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

SAVE_LOOP = """
import sys, faulthandler, signal
faulthandler.register(signal.SIGUSR1)
from tests.pipelines.tiny import tiny_pipeline
pipe = tiny_pipeline(int(sys.argv[2]))
pipe.save_pretrained(sys.argv[1], overwrite=True)
print("ready", flush=True)
i = 0
while True:  # replace the folder again and again, so the kill lands anywhere in a write
    i += 1
    pipe.save_pretrained(sys.argv[1], overwrite=True)
"""


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")


def _interrupt(proc: subprocess.Popen, sig: signal.Signals, *, timeout: float = 60.0) -> None:
    """Send ``sig`` and wait for the writer to end, sending it again every 5 s meanwhile (as a user presses
    Ctrl-C again). In some full-suite runs the SIGINT writer went on saving for 60 s despite repeated SIGINTs;
    it never happened in isolation and the cause is not found, so a writer still running at ``timeout`` fails
    the test with its Python stacks (faulthandler on SIGUSR1) for the next person to read."""
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=min(5.0, max(0.1, deadline - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                proc.send_signal(signal.SIGUSR1)
                time.sleep(1)
                proc.kill()
                _, err = proc.communicate()
                message = f"the writer ignored {sig.name} for {timeout:.0f} s; its stacks:\n{err[-8000:]}"
                raise AssertionError(message) from None


@pytest.mark.parametrize("seed, sig", [(0, signal.SIGKILL), (1, signal.SIGINT), (2, signal.SIGKILL),
                                       (3, signal.SIGINT)])  # fmt: skip
def test_killed_save_pretrained_leaves_old_or_new_folder(tmp_path, seed, sig):
    folder = tmp_path / "pipe"
    proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(folder), str(seed)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_ready(proc)
        time.sleep(random.Random(seed).uniform(0.05, 1.5))
        _interrupt(proc, sig)
    finally:
        proc.kill()
        proc.communicate()
    assert folder.is_dir(), "the folder existed before the kill; it must still be there (old or new)"
    SS4DPipeline.from_pretrained(folder)  # complete and loadable
    if sig == signal.SIGINT:  # Ctrl-C cleans up its temporary folder and lock itself
        assert _leftovers(folder) == []
    tiny_pipeline(seed).save_pretrained(folder, overwrite=True)  # the next writer recovers and cleans up
    assert _leftovers(folder) == []
    SS4DPipeline.from_pretrained(folder)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("interrupt") / "model"
    tiny_pipeline().save_pretrained(folder)
    return folder


def _check_output(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    plys = sorted(out.glob("frame_*.ply"))
    assert len(plys) == summary["num_frames"] == len(load_npz(out / "gaussians.npz"))
    for p in plys:
        load_ply(p)


@pytest.fixture(scope="module")
def previous_output(model, tmp_path_factory) -> tuple[Path, Path]:
    """A clip and a complete output of it, made in-process (the interrupted run replaces a copy of it)."""
    d = tmp_path_factory.mktemp("previous")
    clip = gif(d / "clip.gif", T=6)
    SS4DPipeline.from_pretrained(model)(clip, num_inference_steps=2, progress=False).save(d / "out")
    return clip, d / "out"


@pytest.mark.parametrize("seed, sig", [(0, signal.SIGKILL), (1, signal.SIGINT), (2, signal.SIGKILL)])
def test_killed_generate_leaves_no_partial_output(tmp_path, model, previous_output, seed, sig):
    clip, previous = previous_output
    out = Path(shutil.copytree(previous, tmp_path / "out"))
    _check_output(out)
    cmd = [sys.executable, "-m", "ss4d.cli", "generate", str(clip), "-o", str(out), "--model", str(model),
           "--steps", "2", "-q", "--overwrite"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(random.Random(seed).uniform(0.5, 4.0))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:  # finished (0), caught in ss4d (130), or interrupted while Python was starting
        assert proc.returncode in (0, 130, -signal.SIGINT), err.decode()
    assert out.is_dir()
    _check_output(out)  # old or new, complete either way
    with atomic_folder(out, overwrite=True) as tmp:  # the next writer recovers and cleans up
        shutil.copytree(out, tmp, dirs_exist_ok=True)
    assert _leftovers(out) == []
    _check_output(out)
