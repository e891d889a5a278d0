"""Read a clip from a video file, a folder of frames, a list of PIL images or a tensor; write videos.

Every reader returns a :class:`Clip`: ``frames [T, C, H, W]`` float in [0, 1] with C = 3 (RGB) or 4
(RGBA, when the source has alpha), plus the frame rate when known. GIFs and image folders need only
Pillow; other containers (mp4, webm, mov, ...) use PyAV (``pip install 'ss4d[video]'``).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.ops._optional import require

__all__ = ["Clip", "IMAGE_SUFFIXES", "load_clip", "write_video"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_HINT = "Reading/writing this video format needs PyAV: pip install 'ss4d[video]'"
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


def _from_pil(images: Sequence, source: str) -> Tensor:
    from PIL import Image

    arrays = []
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise TypeError(f"{source}: item {i} is a {type(im).__name__}, not a PIL image")
        mode = "RGBA" if (im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info) else "RGB"
        arrays.append(np.asarray(im.convert(mode)))
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"{source}: frames have different sizes {sorted(sizes)}; all frames must match")
    channels = {a.shape[2] for a in arrays}
    if len(channels) > 1:  # some frames with alpha: give every frame an alpha channel
        arrays = [
            a if a.shape[2] == 4 else np.concatenate([a, np.full(a.shape[:2] + (1,), 255, a.dtype)], 2) for a in arrays
        ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def _read_gif(path: Path) -> Clip:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        duration = im.info.get("duration")
        frames = [f.convert("RGBA") for f in ImageSequence.Iterator(im)]
    rgba = _from_pil(frames, str(path))
    if bool((rgba[:, 3] >= 1.0).all()):  # no transparency anywhere: plain RGB
        rgba = rgba[:, :3]
    return Clip(rgba, 1000.0 / duration if duration else None)


def _read_video(path: Path) -> Clip:
    av = require("av", hint=VIDEO_HINT)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else None
        has_alpha = "a" in (stream.codec_context.pix_fmt or "")
        fmt = "rgba" if has_alpha else "rgb24"
        arrays = [frame.to_ndarray(format=fmt) for frame in container.decode(stream)]
    if not arrays:
        raise ValueError(f"{path}: the video has no frames")
    return Clip(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0, fps)


def _read_folder(path: Path) -> Clip:
    from PIL import Image, UnidentifiedImageError

    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise ValueError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{f}: not a readable image ({e})") from e
    return Clip(_from_pil(images, str(path)))


def _from_tensor(x: Tensor) -> Clip:
    if x.ndim != 4 or x.shape[1] not in (3, 4):
        raise ValueError(f"a clip tensor must be [T, C, H, W] with C = 3 (RGB) or 4 (RGBA), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return Clip(x.float() / 255.0)
    if not x.dtype.is_floating_point:
        raise ValueError(f"a clip tensor must be uint8 or float in [0, 1], got {x.dtype}")
    if float(x.min()) < -1e-3 or float(x.max()) > 1 + 1e-3:
        raise ValueError(
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
    """Read a clip and subsample it.

    Args:
        source: video file (gif via Pillow; mp4/webm/... via PyAV), folder of frames (natural sort),
            list of PIL images, or ``[T, C, H, W]`` uint8 / float tensor (C = 3 or 4).
        max_frames: keep at most this many frames (after ``stride`` / ``fps``).
        stride: keep every ``stride``-th frame.
        fps: resample to this frame rate (needs the source's rate; ignored for folders and tensors).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: empty or unreadable sources, frames of different sizes, bad options.
    """
    if stride < 1:
        raise ValueError(f"`stride` must be >= 1, got {stride}")
    if max_frames is not None and not 1 <= max_frames <= MAX_FRAMES_LIMIT:
        raise ValueError(f"`max_frames` must be in 1..{MAX_FRAMES_LIMIT}, got {max_frames}")
    if fps is not None and fps <= 0:
        raise ValueError(f"`fps` must be > 0, got {fps}")
    if isinstance(source, Tensor):
        clip = _from_tensor(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_dir():
            clip = _read_folder(path)
        elif path.suffix.lower() == ".gif":
            clip = _read_gif(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            clip = Clip(_from_pil([_open_image(path)], str(path)))
        else:
            clip = _read_video(path)
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if len(source) == 0:
            raise ValueError("the list of images is empty")
        clip = Clip(_from_pil(source, "images"))
    else:
        raise TypeError(f"unsupported clip source {type(source).__name__}")
    frames, rate = clip.frames, clip.fps
    if fps is not None and rate:
        step = max(rate / fps, 1.0)
        keep = torch.arange(0, frames.shape[0], step).long()
        frames, rate = frames[keep], rate / step
    frames = frames[::stride]
    rate = rate / stride if rate else rate
    if max_frames is not None:
        frames = frames[:max_frames]
    if frames.shape[0] == 0:
        raise ValueError("the clip has no frames")
    return Clip(frames.contiguous(), rate)


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from e


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
