"""Write the small example clips in examples/clips/ (RGBA GIFs, reproducible).

    python examples/make_example_clips.py

* ``bouncing_ball.gif``: a hand-made animation (not from the training distribution);
* ``world_<seed>.gif``: the front video of a clip of a family never trained on (``ss4d data synth --world
  families-heldout --frames 16 --seed <seed>``; the README's preview);
* ``synth_<seed>.gif``: the front videos of held-out synthetic clips (seeds from the evaluation set of
  ``docs/training.md``, never seen in training), made exactly as ``ss4d data synth --frames 16 --seed <seed>``
  makes them.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image

from ss4d.data.synthetic import make_clip

OUT = Path(__file__).resolve().parent / "clips"


def bouncing_ball(frames: int = 16, size: int = 96) -> list[Image.Image]:
    """A shaded ball that bounces and squashes on landing."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = []
    for t in range(frames):
        phase = t / frames
        height = abs(math.cos(math.pi * phase))  # 1 at the top, 0 on the ground
        squash = 1.0 - 0.35 * max(0.0, 0.3 - height) / 0.3
        rx, ry = 0.2 * size / squash**0.5, 0.2 * size * squash
        cx, cy = size * (0.35 + 0.3 * phase), size * 0.78 - ry - height * size * 0.45
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        inside = d < 1.0
        shade = np.clip(
            1.1 - 0.6 * np.sqrt(((xx - cx + 0.3 * rx) / rx) ** 2 + ((yy - cy + 0.3 * ry) / ry) ** 2), 0.2, 1
        )
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., 0] = (230 * shade).astype(np.uint8)
        rgba[..., 1] = (90 * shade + 40 * (xx / size)).astype(np.uint8)
        rgba[..., 2] = (40 * shade).astype(np.uint8)
        rgba[..., 3] = np.where(inside, 255, 0)
        images.append(Image.fromarray(rgba, "RGBA"))
    return images


HELDOUT_SEEDS = (100011, 100012, 100019, 100022)  # held-out clips with clearly visible motion


HELDOUT_WORLD_SEEDS = (100003,)  # a winged creature (held-out family) that drifts and squashes


def heldout_clip(seed: int, frames: int = 16, world: str = "v1") -> list[Image.Image]:
    """The front video of synthetic clip ``seed`` (as ``ss4d data synth --world`` renders it), as RGBA images."""
    video = make_clip(seed, num_frames=frames, world=world).video.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(np.ascontiguousarray(f), "RGBA") for f in video]


def _save_gif(frames: list[Image.Image], path: Path) -> None:
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0, disposal=2)
    print(f"wrote {path}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    _save_gif(bouncing_ball(), OUT / "bouncing_ball.gif")
    for seed in HELDOUT_SEEDS:
        _save_gif(heldout_clip(seed), OUT / f"synth_{seed}.gif")
    for seed in HELDOUT_WORLD_SEEDS:
        _save_gif(heldout_clip(seed, world="families-heldout"), OUT / f"world_{seed}.gif")


if __name__ == "__main__":
    main()
