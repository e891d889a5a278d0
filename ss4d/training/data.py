"""Training batches from synthetic clips (``ss4d data synth``): one function per network.

Each ``*_batch`` is a pure function of ``(dataset, generator)`` so the trainer's exact resume holds.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ss4d.data.synthetic import SyntheticClip, occupancy_grid, voxel_batch
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

__all__ = ["ClipDataset", "SLatVAEBatch", "occupancy_grid", "voxel_batch"]  # the last two: ss4d.data.synthetic


class ClipDataset:
    """The clips under a folder (``clip_*/``), loaded once and kept in memory (they are small)."""

    def __init__(self, folder: str | Path, *, limit: int | None = None) -> None:
        folders = sorted(p for p in Path(folder).glob("clip_*") if p.is_dir())[:limit]
        if not folders:
            raise FileNotFoundError(f"{folder}: no clip_* folders (make some with `ss4d data synth --out {folder}`)")
        self.clips = [SyntheticClip.load(f) for f in folders]
        self.resolution = int(self.clips[0].meta["resolution"])

    def __len__(self) -> int:
        return len(self.clips)

    def pick_indices(self, generator: torch.Generator, count: int) -> list[int]:
        return torch.randint(len(self.clips), (count,), generator=generator).tolist()

    def pick(self, generator: torch.Generator, count: int) -> list[SyntheticClip]:
        return [self.clips[i] for i in self.pick_indices(generator, count)]


def structure_batch(data: ClipDataset, generator: torch.Generator, batch_size: int, frames: int) -> Tensor:
    """``[B, T, 1, R, R, R]`` occupancy for the structure VAE."""
    return torch.stack([occupancy_grid(c, frames) for c in data.pick(generator, batch_size)])


def condition_frames(clip: SyntheticClip, frames: int, size: int) -> Tensor:
    """The front video's first ``frames`` frames prepared exactly as the pipeline prepares its input
    (:func:`ss4d.pipelines.preprocess.preprocess_clip`: square crop around the union alpha box, resize,
    premultiply on black): ``[T, 3, size, size]`` in [0, 1]. Training on anything else (e.g. uncropped frames)
    shifts and rescales the object between training and inference."""
    from ss4d.data.video import Clip
    from ss4d.pipelines.preprocess import preprocess_clip

    rgba = clip.video[:frames].float() / 255
    return preprocess_clip(Clip(rgba), size).images


@dataclass
class SLatVAEBatch:
    voxels: SparseTensor  # features on the clip's voxels, layout (1, T)
    views: Tensor  # [T, 4, S, S] one random view per frame, float in [0, 1]
    viewmats: Tensor  # [T, 4, 4]
    focal: float


def slat_vae_batch(data: ClipDataset, generator: torch.Generator, frames: int) -> SLatVAEBatch:
    """One clip's first ``frames`` frames: voxel features and one random ground-truth view per frame."""
    clip = data.pick(generator, 1)[0]
    keep = clip.coords[:, 0] < frames
    R = data.resolution
    voxels = SparseTensor(clip.features[keep].float(), clip.coords[keep], SpacetimeLayout(1, frames),
                          spatial_shape=(R, R, R))  # fmt: skip
    V = clip.views.shape[1]
    pick = torch.randint(V, (frames,), generator=generator)
    views = clip.views[torch.arange(frames), pick].float() / 255
    return SLatVAEBatch(voxels, views, clip.viewmats[torch.arange(frames), pick], clip.focal)


def random_black_masks(frames: Tensor, generator: torch.Generator, p: float = 0.5, max_frac: float = 0.4) -> Tensor:
    """The paper's augmentation: with probability ``p`` per frame, black out a random rectangle."""
    out = frames.clone()
    *lead, _, H, W = frames.shape
    flat = out.view(-1, *frames.shape[-3:])
    for i in range(flat.shape[0]):
        if float(torch.rand(1, generator=generator)) < p:
            h = int(H * max_frac * float(torch.rand(1, generator=generator))) + 1
            w = int(W * max_frac * float(torch.rand(1, generator=generator))) + 1
            y = int(torch.randint(H - h + 1, (1,), generator=generator))
            x = int(torch.randint(W - w + 1, (1,), generator=generator))
            flat[i, :, y : y + h, x : x + w] = 0
    return out
