import pytest
import torch

from ss4d.cli import main
from ss4d.threads import default_threads, set_threads


def test_default_threads_use_the_idle_cores():
    assert default_threads(cpus=2, load=0.1) == 2
    assert default_threads(cpus=2, load=1.2) == 1
    assert default_threads(cpus=2, load=7.5) == 1  # a loaded machine: one thread, never zero
    assert default_threads(cpus=16, load=3.4) == 13
    assert default_threads(cpus=4, load=-1.0) == 4  # never more than the cores
    assert 1 <= default_threads() <= torch.get_num_threads() + 64


def test_set_threads_explicit_then_environment_then_idle_cores(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(2)
        assert set_threads(None) == 2  # OMP_NUM_THREADS set: torch's own setting is left alone
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert set_threads(None) == torch.get_num_threads() >= 1
        with pytest.raises(ValueError, match="--threads"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_cli_rejects_a_bad_thread_count(tmp_path):
    assert main(["eval", "--model", str(tmp_path), "--data", str(tmp_path), "--threads", "0"]) == 2
