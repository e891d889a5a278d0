"""Decoding clips frame by frame: every source is an iterator of ``uint8 [H, W, C]`` arrays (C = 3 or 4).

Frames are decoded lazily, so :func:`select_frames` keeps only the frames a caller asked for (``stride``,
``max_frames``, ``fps``) and memory grows with the *kept* frames, not the clip's length. Image modes are
converted with the right scaling: 16-bit (``I;16``, ``I``) and float (``F``) images are scaled from their
range to 8 bits (Pillow's own ``convert`` clips them, turning a 16-bit image almost white), palette images go
through their palette (and transparency). Animated GIF / WebP / PNG (APNG) / TIFF files are read as clips.
Undecodable files raise :class:`~ss4d.errors.MediaError` naming the file.
"""

import math
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ss4d.errors import MediaError
from ss4d.ops._optional import require

__all__ = ["DEFAULT_FRAME_CAP", "frames_of_image_file", "frames_of_video_file", "pil_to_array", "select_frames"]

DEFAULT_FRAME_CAP = 256
"""Frames kept when the caller sets no ``max_frames`` (a warning says so); pass ``max_frames`` to keep more."""
VIDEO_HINT = "Reading/writing this video format needs PyAV: pip install 'ss4d[video]'"


def has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def pil_to_array(im, *, alpha: bool | None = None) -> np.ndarray:
    """``uint8 [H, W, 3|4]`` of a PIL image of any mode; ``alpha`` forces (True) or drops (False) the alpha
    channel, None keeps the image's own."""
    want_alpha = has_alpha(im) if alpha is None else alpha
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # high bit depth grey: scale, do not clip
        a = np.asarray(im).astype(np.float64)
        top = 1.0 if im.mode == "F" else (65535.0 if im.mode.startswith("I;16") or a.max() <= 65535 else a.max())
        grey = np.clip(np.rint(np.nan_to_num(a) / top * 255.0), 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        return np.concatenate([rgb, np.full_like(grey[..., None], 255)], 2) if want_alpha else rgb
    return np.asarray(im.convert("RGBA" if want_alpha else "RGB"))


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise MediaError(f"{path}: not a readable image ({e}); check the file or convert it to PNG") from e


def frames_of_image_file(path: Path) -> tuple[Iterator[np.ndarray], float | None, bool]:
    """Frames of a still or animated image (GIF / WebP / APNG / multi-page TIFF): (frames, fps, alpha)."""
    from PIL import ImageSequence

    im = _open(path)
    duration = im.info.get("duration")
    alpha = has_alpha(im) or path.suffix.lower() == ".gif"  # GIF frames: decide per clip below

    def frames() -> Iterator[np.ndarray]:
        try:
            with im:
                for frame in ImageSequence.Iterator(im):
                    yield pil_to_array(frame, alpha=alpha)
        except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many types (IndexError, SyntaxError, ...)
            raise MediaError(f"{path}: the file is damaged or truncated ({type(e).__name__}: {e}); re-export it") from e

    fps = 1000.0 / duration if isinstance(duration, (int, float)) and duration > 0 else None
    return frames(), fps, alpha


def frames_of_video_file(path: Path) -> tuple[Iterator[np.ndarray], float | None, bool]:
    """Frames of a video container (PyAV), decoded one at a time: (frames, fps, alpha)."""
    av = require("av", hint=VIDEO_HINT)
    try:
        container = av.open(str(path))
    except Exception as e:  # noqa: BLE001 - PyAV raises many types for a file it cannot open
        raise MediaError(f"{path}: not a readable video ({type(e).__name__}: {e}); check the file") from e
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path}: no video stream (audio only?); pass a video, a GIF or a folder of frames")
    stream = container.streams.video[0]
    fps = float(stream.average_rate) if stream.average_rate else None
    alpha = "a" in (stream.codec_context.pix_fmt or "")

    def frames() -> Iterator[np.ndarray]:
        try:
            with container:
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgba" if alpha else "rgb24")
        except Exception as e:  # noqa: BLE001 - FFmpeg errors of a damaged stream
            raise MediaError(f"{path}: the video is damaged ({e}); re-encode it") from e

    return frames(), fps, alpha


def select_frames(
    frames: Iterable, *, stride: int = 1, max_frames: int | None = None, step: float = 1.0,
    source: str = "the clip",
) -> list:  # fmt: skip
    """Keep source frames ``floor(j * stride * step)`` for j = 0, 1, ... (``step`` >= 1 from fps resampling),
    at most ``max_frames`` of them (default :data:`DEFAULT_FRAME_CAP`, with a warning when the clip is longer),
    consuming the iterator only as far as needed. All kept frames must share size and channel count."""
    cap = DEFAULT_FRAME_CAP if max_frames is None else max_frames
    kept: list = []  # numpy arrays, or tensors for a tensor clip
    j, want = 0, 0
    for i, frame in enumerate(frames):
        if i < want:
            continue
        if len(kept) == cap:
            if max_frames is None:
                warnings.warn(f"{source} has more than {cap} frames; keeping the first {cap} (pass --max-frames N / "
                              "max_frames=N to keep more, or --stride to subsample)", stacklevel=3)  # fmt: skip
            break
        if kept and frame.shape != kept[0].shape:
            raise MediaError(f"{source}: frames have different sizes: frame {i} is {tuple(frame.shape)}, frame 0 "
                             f"{tuple(kept[0].shape)} (height, width, channels); resize them to one size")  # fmt: skip
        kept.append(frame)
        if len(kept) == max_frames:  # asked for: stop here (the default cap looks one frame further, to warn)
            break
        j += 1
        want = math.floor(j * stride * step)
    if not kept:
        raise MediaError(f"{source} has no frames; pass a clip with at least one frame")
    return kept
