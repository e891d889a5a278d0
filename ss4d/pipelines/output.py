"""`SS4DOutput`: what a pipeline call returns, and how it is written to disk."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float, Int32
from torch import Tensor

from ss4d import __version__
from ss4d.ops.sparse import SparseTensor
from ss4d.representations import Gaussians, save_npz, save_ply_sequence
from ss4d.utils.atomic import atomic_folder

__all__ = ["SS4DLatents", "SS4DOutput"]


@dataclass
class SS4DOutput:
    """Per-frame Gaussians and voxels of one clip, the preprocessed input and the time of each stage."""

    gaussians: list[Gaussians]
    coords: list[Int32[Tensor, "_ 3"]]  # active voxels (x, y, z) per frame at the SLat resolution
    images: Float[Tensor, "t 3 s s"]  # preprocessed condition frames
    resolution: int
    timings: dict[str, float] = field(default_factory=dict)
    # peak accelerator memory per stage in bytes (CUDA: torch.cuda.max_memory_allocated); None = not measurable
    peak_memory: dict[str, int | None] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # what reproduces the run (seed, samplers, model, versions)

    @property
    def num_frames(self) -> int:
        return len(self.gaussians)

    def save(self, folder: str | Path, *, preview: bool = True, preview_size: int = 192, fps: float = 8.0,
             overwrite: bool = False, extras: Callable[[Path], Sequence[Path]] | None = None) -> dict:  # fmt: skip
        """Write ``frame_0000.ply`` ... (3DGS PLY, y-up), ``gaussians.npz``, ``summary.json`` and, with
        ``preview``, ``preview.mp4`` (or ``.gif`` without PyAV): input | novel view | structure.

        Everything goes inside ``folder``, written whole or not at all (:func:`ss4d.utils.atomic_folder`);
        an existing non-empty ``folder`` is replaced only with ``overwrite=True``. ``extras(tmp)`` writes more
        files into the same transaction (e.g. :func:`ss4d.export.export_folder`: viewer, meshes, splats) after
        the files above and returns their paths. Returns the written paths.
        """
        folder = Path(folder)
        with atomic_folder(folder, overwrite=overwrite) as tmp:
            written = self._write(tmp, preview=preview, preview_size=preview_size, fps=fps)
            more = [Path(p).relative_to(tmp) for p in extras(tmp)] if extras is not None else []
        out = {k: ([str(folder / Path(p).name) for p in v] if isinstance(v, list) else str(folder / Path(v).name))
               for k, v in written.items()}  # fmt: skip
        if more:
            out["extras"] = [str(folder / p) for p in more]
        return out

    def _write(self, folder: Path, *, preview: bool, preview_size: int, fps: float) -> dict:
        written: dict = {"ply": [p.name for p in save_ply_sequence(self.gaussians, folder)]}
        written["npz"] = save_npz(self.gaussians, folder / "gaussians.npz").name
        if preview:
            from ss4d.data import write_video
            from ss4d.render.preview import render_preview

            frames = render_preview(self.gaussians, self.coords, self.images, self.resolution, size=preview_size)
            written["preview"] = write_video(frames, folder / "preview.mp4", fps=fps).name
        summary = {
            **self.settings,
            "num_frames": self.num_frames,
            "gaussians_per_frame": [len(g) for g in self.gaussians],
            "voxels_per_frame": [int(c.shape[0]) for c in self.coords],
            "resolution": self.resolution,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "peak_memory_mb": {k: "n/a" if v is None else round(v / 2**20, 1) for k, v in self.peak_memory.items()},
            "files": written,
            "versions": {"ss4d": __version__, "torch": torch.__version__},
        }
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return written

    def to(self, device: torch.device | str) -> "SS4DOutput":
        return SS4DOutput(
            [g.to(device) for g in self.gaussians], [c.to(device) for c in self.coords], self.images.to(device),
            self.resolution, dict(self.timings), dict(self.peak_memory), dict(self.settings),
        )  # fmt: skip


@dataclass
class SS4DLatents:
    """What a pipeline call with ``output_type="latent"`` returns: the structured latents, not decoded
    (``pipe.decode(out.slat)`` gives the Gaussians)."""

    slat: SparseTensor  # de-normalised SLat features on the voxels of every frame (layout (1, T))
    images: Float[Tensor, "t 3 s s"]  # preprocessed condition frames
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return self.slat.layout.num_frames

    @property
    def coords(self) -> list[Int32[Tensor, "_ 3"]]:
        """Active voxels (x, y, z) per frame at the SLat resolution."""
        c = self.slat.coords
        return [c[c[:, 0] == t, 1:].cpu() for t in range(self.num_frames)]
