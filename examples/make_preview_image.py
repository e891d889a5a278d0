"""Render the README's preview image: input | Gaussians | voxels for every ``--every``-th frame of one clip.

    python examples/make_preview_image.py examples/clips/world_100003.gif docs/images/preview_world_100003.png

The rows are the frames of ``preview.mp4`` (``ss4d.render.preview.render_preview``: the preprocessed input,
the Gaussians from the orbiting preview camera, the voxel structure), stacked top to bottom.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ss4d import SS4DPipeline
from ss4d.render.preview import render_preview
from ss4d.utils.atomic import atomic_file


def preview_image(
    pipe: SS4DPipeline,
    clip: str | Path,
    *,
    every: int = 3,
    size: int = 96,
    steps: int | None = None,
    seed: int = 0,
    max_frames: int | None = None,
) -> Image.Image:
    """Run ``pipe`` on ``clip`` and return every ``every``-th preview row as one RGB image."""
    out = pipe(clip, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed), progress=False,
               max_frames=max_frames)  # fmt: skip
    rows = render_preview(out.gaussians, out.coords, out.images, out.resolution, size=size)[::every]
    grid = torch.cat(list(rows), dim=1)  # [3, rows * size, 3 * size]
    return Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), "RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", help="input clip (GIF, video or frame folder)")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--model", default="checkpoints/ss4d-tiny")
    parser.add_argument("--every", type=int, default=3, help="keep every N-th frame (default: 3)")
    parser.add_argument("--size", type=int, default=96, help="pixels per panel (default: 96)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    image = preview_image(SS4DPipeline.from_pretrained(args.model), args.clip, every=args.every, size=args.size,
                          steps=args.steps, seed=args.seed)  # fmt: skip
    atomic_file(args.out, lambda tmp: image.save(tmp, format="PNG"))
    print(f"wrote {args.out} ({image.width}x{image.height})")


if __name__ == "__main__":
    main()
