"""Write ``viewer.html``: one self-contained page (no network access) that plays a 4D result in WebGL2.

The page embeds the sequence in the compact encoding of :mod:`ss4d.viewer.pack` (base64), the input frames as
JPEG data URIs, and ``viewer.js`` (ss4d's own splat renderer, same model as :mod:`ss4d.render.rasterize`).
"""

import base64
import io
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ss4d import __version__
from ss4d.errors import InputError
from ss4d.export._atomic import write_atomic
from ss4d.export.folder import load_result_gaussians
from ss4d.export.structure import Structure, load_structure
from ss4d.representations import Gaussians
from ss4d.viewer.pack import SplatFrame, encode_sequence, splat_frame

__all__ = ["build_viewer_html", "read_viewer_html", "viewer_from_folder", "voxels_from_gaussians", "write_viewer"]

DEFAULT_FPS = 8.0


def _jpeg_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def voxels_from_gaussians(frames: Sequence[Gaussians], resolution: int) -> list[np.ndarray]:
    """The grid cells holding Gaussian centres (for result folders saved without ``structure.npz``)."""
    out = []
    for g in frames:
        idx = np.floor((g.xyz.detach().float().cpu().numpy() + 0.5) * resolution).astype(np.int64)
        out.append(np.unique(idx.clip(0, resolution - 1), axis=0))
    return out


def _most_visible(f: SplatFrame, k: int) -> SplatFrame:
    if len(f) <= k:
        return f
    score = f.opacity * np.prod(f.scales, axis=1) ** (2 / 3)
    keep = np.sort(np.argpartition(-score, k - 1)[:k])
    return SplatFrame(f.xyz[keep], f.scales[keep], f.quats[keep], f.opacity[keep], f.rgb[keep])


def build_viewer_html(
    gaussians: Sequence[Gaussians],
    *,
    structure: Structure | None = None,
    fps: float | None = None,
    title: str = "ss4d",
    max_gaussians: int | None = None,
) -> str:
    """The page's HTML text. ``structure`` adds the voxel mode and the input frames; ``fps`` overrides its rate;
    ``max_gaussians`` keeps that many Gaussians a frame, those with the largest ``opacity * scale_x scale_y
    scale_z ^ (2/3)`` (about their projected area), to keep pages of large models small."""
    if not gaussians:
        raise InputError("the viewer needs at least one frame of Gaussians")
    if structure is not None and len(structure.coords) != len(gaussians):
        raise InputError(f"structure has {len(structure.coords)} frames, the Gaussians {len(gaussians)}")
    rate = fps or (structure.fps if structure is not None else DEFAULT_FPS)
    if rate <= 0:
        raise InputError(f"`fps` must be > 0, got {rate}")
    voxels = structure.coords if structure is not None else None
    if max_gaussians is not None and max_gaussians < 1:
        raise InputError(f"`max_gaussians` must be >= 1, got {max_gaussians}")
    frames = [splat_frame(g) for g in gaussians]
    if max_gaussians is not None:
        frames = [_most_visible(f, max_gaussians) for f in frames]
    meta, blob = encode_sequence(frames, voxels,
                                 structure.resolution if structure is not None else None)  # fmt: skip
    meta["fps"] = float(rate)
    images = structure.images if structure is not None else None
    meta["images"] = [_jpeg_data_uri(im) for im in images] if images is not None else []
    fill = {
        "TITLE": re.sub(r"[<>&\"']", "", title),
        "VERSION": __version__,
        "META": json.dumps(meta, separators=(",", ":")).replace("</", "<\\/"),
        "DATA": base64.b64encode(blob).decode("ascii"),
        "SCRIPT": resources.files("ss4d.viewer").joinpath("viewer.js").read_text(encoding="utf-8"),
    }
    template = resources.files("ss4d.viewer").joinpath("viewer.html").read_text(encoding="utf-8")
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: fill[m.group(1)], template)


def read_viewer_html(html: str) -> tuple[dict, bytes]:
    """The metadata and the binary blob a ``viewer.html`` carries (for :func:`~ss4d.viewer.pack.decode_frame`)."""
    meta = re.search(r'<script id="ss4d-meta" type="application/json">(.*?)</script>', html, re.S)
    data = re.search(r'<script id="ss4d-data" type="application/octet-stream">(.*?)</script>', html, re.S)
    if meta is None or data is None:
        raise InputError("not an ss4d viewer page (no ss4d-meta / ss4d-data script)")
    return json.loads(meta.group(1)), base64.b64decode(data.group(1))


def write_viewer(path: str | Path, gaussians: Sequence[Gaussians], **kwargs) -> Path:
    """Write :func:`build_viewer_html` to ``path`` (whole or not at all)."""
    html = build_viewer_html(gaussians, **kwargs)
    return write_atomic(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))


def viewer_from_folder(
    folder: str | Path, *, output: str | Path | None = None, fps: float | None = None, max_gaussians: int | None = None
) -> Path:
    """``folder/viewer.html`` (or ``output``) from a result folder of ``ss4d generate``.

    Reads ``gaussians.npz``; ``structure.npz`` (written by ``generate --viewer`` / ``--mesh``) adds the sampled
    voxels and the input frames. Without it the voxel mode shows the cells holding Gaussian centres at the
    resolution of ``summary.json`` and no input frame is shown.

    Raises:
        FileNotFoundError: ``folder`` or its ``gaussians.npz`` is missing.
    """
    folder = Path(folder)
    frames = load_result_gaussians(folder)
    structure = None
    if (folder / "structure.npz").is_file():
        structure = load_structure(folder / "structure.npz")
    elif (folder / "summary.json").is_file():
        res = int(json.loads((folder / "summary.json").read_text()).get("resolution", 64))
        structure = Structure(voxels_from_gaussians(frames, res), res, None, fps or DEFAULT_FPS)
    return write_viewer(output or folder / "viewer.html", frames, structure=structure, fps=fps, title=folder.name,
                        max_gaussians=max_gaussians)  # fmt: skip
