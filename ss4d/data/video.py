"""Read a clip from a video file, a folder of frames, a list of PIL images or a tensor; write videos.

Every reader returns a :class:`Clip`: ``frames [T, C, H, W]`` float in [0, 1] with C = 3 (RGB) or 4
(RGBA, when the source has alpha), plus the frame rate when known. GIF / animated WebP / APNG / TIFF files
and image folders need only Pillow; other containers (mp4, webm, mov, ...) use PyAV
(``pip install 'ss4d[video]'``). Frames are decoded one at a time (:mod:`ss4d.data.media`), so ``max_frames``
and ``stride`` bound memory; a folder must have alpha in every frame or in none.
"""

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.data.media import (
    VIDEO_HINT,
    frames_of_image_file,
    frames_of_video_file,
    has_alpha,
    pil_to_array,
    select_frames,
)
from ss4d.errors import InputError, MediaError
from ss4d.ops._optional import require
from ss4d.utils.untrusted import check_finite

__all__ = ["Clip", "IMAGE_SUFFIXES", "load_clip", "write_video"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}  # still or animated
MAX_FRAMES_LIMIT = 4096


@dataclass
class Clip:
    frames: Float[Tensor, "t c h w"]
    fps: float | None = None

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def has_alpha(self) -> bool:
        return self.frames.shape[1] == 4


def _natural_key(path: Path) -> list:
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


def _to_tensor(arrays: list[np.ndarray]) -> Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def _pil_frames(images: Sequence, source: str) -> tuple[Iterator[np.ndarray], bool]:
    from PIL import Image

    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise InputError(f"{source}: item {i} is a {type(im).__name__}, not a PIL image")
    alpha = _common_alpha([has_alpha(im) for im in images], [f"item {i}" for i in range(len(images))], source)
    return (pil_to_array(im, alpha=alpha) for im in images), alpha


def _common_alpha(flags: list[bool], names: list[str], source: str) -> bool:
    """Every frame with alpha or none: a mix would treat the opaque frames' whole background as the object."""
    if any(flags) and not all(flags):
        with_a = names[flags.index(True)]
        without = names[flags.index(False)]
        raise MediaError(f"{source}: {with_a} has an alpha channel but {without} does not ({sum(flags)} of "
                         f"{len(flags)} frames have one); save every frame as RGBA (or all as RGB)")  # fmt: skip
    return bool(flags and flags[0])


def _folder_frames(path: Path) -> tuple[Iterator[np.ndarray], bool]:
    from PIL import Image, UnidentifiedImageError

    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise MediaError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
    flags = []
    for f in files:  # headers only: modes are known before any pixel is decoded
        try:
            with Image.open(f) as im:
                flags.append(has_alpha(im))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise MediaError(f"{f}: not a readable image ({e}); fix or remove it") from e
    alpha = _common_alpha(flags, [f.name for f in files], str(path))

    def frames() -> Iterator[np.ndarray]:
        for f in files:
            try:
                with Image.open(f) as im:
                    im.load()
                    yield pil_to_array(im, alpha=alpha)
            except (UnidentifiedImageError, OSError, ValueError) as e:
                raise MediaError(f"{f}: not a readable image ({e}); fix or remove it") from e

    return frames(), alpha


def _from_tensor(x: Tensor) -> Clip:
    if x.ndim != 4 or x.shape[1] not in (3, 4):
        raise MediaError(f"a clip tensor must be [T, C, H, W] with C = 3 (RGB) or 4 (RGBA), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return Clip(x.float() / 255.0)
    if not x.dtype.is_floating_point:
        raise MediaError(f"a clip tensor must be uint8 or float in [0, 1], got {x.dtype}")
    check_finite(x, "the clip tensor", fix="replace the NaN / inf pixels")
    if float(x.min()) < -1e-3 or float(x.max()) > 1 + 1e-3:
        raise MediaError(
            f"a float clip tensor must hold values in [0, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]"
        )
    return Clip(x.float().clamp(0, 1))


def load_clip(
    source: str | Path | Sequence | Tensor,
    *,
    max_frames: int | None = None,
    stride: int = 1,
    fps: float | None = None,
) -> Clip:
    """Read a clip and subsample it, decoding only the frames it keeps.

    Args:
        source: video file (GIF / animated WebP / APNG / multi-page TIFF via Pillow; mp4/webm/... via PyAV),
            still image, folder of frames (natural sort), list of PIL images, or ``[T, C, H, W]`` uint8 / float
            tensor (C = 3 or 4).
        max_frames: keep at most this many frames (after ``stride`` / ``fps``); default
            :data:`~ss4d.data.media.DEFAULT_FRAME_CAP` (256), with a warning when the clip is longer.
        stride: keep every ``stride``-th frame.
        fps: resample to this frame rate (needs the source's rate; ignored for folders and tensors).

    Raises:
        FileNotFoundError: the path does not exist.
        MediaError: empty, undecodable or inconsistent sources (size, alpha presence), bad tensors.
        InputError: bad options.
        NonFiniteError: NaN / inf in a float tensor.
    """
    if not isinstance(stride, int) or stride < 1:
        raise InputError(f"`stride` (--stride) must be an integer >= 1, got {stride!r}")
    if max_frames is not None and (not isinstance(max_frames, int) or not 1 <= max_frames <= MAX_FRAMES_LIMIT):
        raise InputError(f"`max_frames` (--max-frames) must be in 1..{MAX_FRAMES_LIMIT}, got {max_frames!r}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise InputError(f"`fps` must be a finite number > 0, got {fps}")
    name = "the clip"
    if isinstance(source, Tensor):
        clip = _from_tensor(source)
        kept = select_frames(iter(clip.frames), stride=stride, max_frames=max_frames, source="the clip tensor")
        return Clip(torch.stack(kept).contiguous())
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        rate = None
        if path.is_dir():
            it, alpha = _folder_frames(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES | {".gif", ".apng"}:
            it, rate, alpha = frames_of_image_file(path)
        else:
            it, rate, alpha = frames_of_video_file(path)
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if len(source) == 0:
            raise MediaError("the list of images is empty; pass at least one frame")
        it, alpha = _pil_frames(source, "images")
        rate, name = None, "the list of images"
    else:
        raise InputError(f"unsupported clip source {type(source).__name__}: pass a path, PIL images or a tensor")
    step = max(rate / fps, 1.0) if fps is not None and rate else 1.0
    kept = select_frames(it, stride=stride, max_frames=max_frames, step=step, source=name)
    frames = _to_tensor(kept)
    if alpha and bool((frames[:, 3] >= 1.0).all()) and Path(name).suffix.lower() == ".gif":
        frames = frames[:, :3]  # a GIF without transparency anywhere: plain RGB
    if rate:
        rate = rate / step / stride
    return Clip(frames.contiguous(), rate)


def write_video(frames: Float[Tensor, "t 3 h w"], path: str | Path, *, fps: float = 12.0) -> Path:
    """Write RGB frames in [0, 1]: ``.mp4`` via PyAV (H.264), ``.gif`` via Pillow. Returns the path written.

    An ``.mp4`` request without PyAV writes a ``.gif`` next to it instead (the returned path says so).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    if path.suffix.lower() == ".mp4":
        try:
            av = require("av", hint=VIDEO_HINT)
        except Exception:
            path = path.with_suffix(".gif")
        else:
            h, w = data.shape[1:3]
            data = data[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sizes
            with av.open(str(path), mode="w") as container:
                stream = container.add_stream("libx264", rate=max(1, round(fps)))
                stream.width, stream.height, stream.pix_fmt = data.shape[2], data.shape[1], "yuv420p"
                for frame in data:
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
            return path
    from PIL import Image

    images = [Image.fromarray(f) for f in data]
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)
    return path
