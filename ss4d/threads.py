"""CPU thread count for one generation or evaluation.

torch defaults to one thread per physical core, which is the wrong choice on a machine other jobs already
load: on a 2-core CPU shared with other processes one `ss4d generate` clip took 345 s with 2 torch threads and
40-90 s with 1 (threads spin-waiting for a core another process holds). ss4d's commands therefore use the
cores nobody else is using: the cores this process may run on minus the 1-minute load average, at least 1.
An explicit ``--threads N`` or ``OMP_NUM_THREADS`` wins.
"""

import os

import torch

__all__ = ["default_threads", "set_threads"]


def default_threads(*, cpus: int | None = None, load: float | None = None) -> int:
    """``max(1, cpus - round(load))``: the idle cores (``cpus``: usable cores; ``load``: 1-minute load
    average, which counts this process's own runnable threads too only once it runs)."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cpus, cpus - round(load)))


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``threads`` if given, else ``OMP_NUM_THREADS`` if set, else
    :func:`default_threads`. Returns the count in effect."""
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    n = threads if threads is not None else default_threads()
    if n < 1:
        raise ValueError(f"--threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    return n
