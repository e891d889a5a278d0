"""Exports of a result folder written by ``ss4d generate``: viewer, meshes, compressed splats."""

from collections.abc import Sequence
from pathlib import Path

from ss4d.export.mesh import ANIMATED_NAME, save_mesh_sequence
from ss4d.export.splats import save_splat_sequence
from ss4d.representations import Gaussians, load_npz

__all__ = ["export_folder", "load_result_gaussians"]


def load_result_gaussians(folder: str | Path) -> list[Gaussians]:
    """The Gaussians of a result folder (its ``gaussians.npz``).

    Raises:
        FileNotFoundError: no ``gaussians.npz`` in ``folder``.
    """
    npz = Path(folder) / "gaussians.npz"
    if not npz.is_file():
        raise FileNotFoundError(f"{npz}: no such file; pass a folder written by `ss4d generate`")
    return load_npz(npz)


def export_folder(
    folder: str | Path,
    *,
    viewer: bool = False,
    mesh: bool = False,
    splat_formats: Sequence[str] = (),
    mesh_resolution: int = 64,
    mesh_level: float = 0.5,
    fps: float | None = None,
) -> list[Path]:
    """Write ``splats/frame_*.<format>``, ``viewer.html`` and ``mesh/frame_*.glb`` (+ ``mesh/animated.glb`` at
    ``fps`` when given) into a result folder, in that order (meshes last: the one that can find no surface)."""
    folder = Path(folder)
    frames = load_result_gaussians(folder)
    written: list[Path] = []
    if splat_formats:
        written += save_splat_sequence(frames, folder / "splats", splat_formats)
    if viewer:
        from ss4d.viewer import viewer_from_folder

        written.append(viewer_from_folder(folder))
    if mesh:
        written += [s.path for s in save_mesh_sequence(frames, folder / "mesh", resolution=mesh_resolution,
                                                       level=mesh_level, animated_fps=fps)]  # fmt: skip
        if fps is not None:
            written.append(folder / "mesh" / ANIMATED_NAME)
    return written
