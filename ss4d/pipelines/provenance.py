"""What a pipeline run needs to be reproduced and trusted: its settings, the model's fingerprint, and
finite stage outputs.

* :func:`config_hash`: SHA-256 over ``model_index.json`` and every component's ``config.json`` (weights
  excluded, so it is cheap), recorded in ``summary.json`` beside the model folder;
* :func:`check_stage`: NaN / inf in a stage's output raise :class:`~ss4d.errors.NonFiniteError` naming the
  stage, before anything is written;
* :func:`frame_notice`: a one-line warning when a clip is longer than the frame counts the model was
  trained on (``trained_frames`` in ``model_index.json``).
"""

import hashlib
import warnings
from pathlib import Path

from torch import Tensor

from ss4d.utils.untrusted import check_finite

__all__ = ["check_stage", "config_hash", "frame_notice"]


def config_hash(folder: Path, components: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for rel in ["model_index.json", *(f"{c}/config.json" for c in components)]:
        p = folder / rel
        if p.is_file():
            h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def check_stage(stage: str, value: Tensor) -> None:
    fix = "nothing was written; the model's weights or the input are broken (try another model or clip)"
    check_finite(value, f"the {stage} stage's output", fix=fix)


def frame_notice(num_frames: int, trained_frames: int | None) -> None:
    if trained_frames is not None and num_frames > trained_frames:
        warnings.warn(f"the clip has {num_frames} frames, the model was trained on up to {trained_frames}; "
                      f"quality may drop (use --max-frames {trained_frames} or --stride to shorten it)",
                      stacklevel=3)  # fmt: skip
