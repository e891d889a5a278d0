"""Device strings checked before anything is loaded onto them."""

import torch

from ss4d.errors import DeviceError

__all__ = ["check_device"]


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine.

    Raises:
        DeviceError: a malformed string (``"nonsense"``), or a CUDA / MPS device this machine does not have.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"--device {device!r}: not a device; expected 'cpu', 'cuda' or 'cuda:N'") from e
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"--device {device!r}: CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"--device {device!r}: this machine has {count} CUDA device(s) (0..{count - 1})")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"--device {device!r}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise DeviceError(f"--device {device!r}: ss4d runs on 'cpu', 'cuda' or 'mps', got {dev.type!r}")
    return dev
