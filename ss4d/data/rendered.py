"""Bring your own data: read multi-view RGBA renders in a TRELLIS/NeRF-style layout into ss4d's clip format.

Layout of one clip folder (the ``transforms.json`` convention of TRELLIS's Blender renders and NeRF datasets,
extended with a ``time`` index per view)::

    clip/
      transforms.json
      <the images it names>          RGBA, transparent background, square, all the same size

    transforms.json = {
      "camera_angle_x": 0.698,       # horizontal field of view in radians (top level or per view; one value)
      "frames": [                    # one entry per rendered view
        {"file_path": "views/t000_v00.png",
         "transform_matrix": [[...], [...], [...], [0, 0, 0, 1]],   # camera-to-world, OpenGL/Blender axes
         "time": 0},                 # frame index; absent = 0 (a static object: a one-frame clip)
        ...
      ],
      "video": ["video/000.png", ...]  # optional conditioning video (one image per time);
    }                                  # default: the first view listed for each time

The object must already be normalised into the unit cube ``[-0.5, 0.5]^3`` (as TRELLIS renders are), with the
same normalisation for every frame (so motion is kept). Per time step, the occupancy at ``resolution`` is the
band of voxels that the **visual hull**'s surface passes through: a voxel centre is inside when it projects onto
the alpha mask of every view, and a voxel is occupied when it and one of its 6 neighbours lie on different sides
(:func:`crossing_voxels`). ``ss4d data synth`` marks the voxels whose centre is within half a voxel diagonal of
the true surface; both are the surface band of an inside test, and they differ where the visual hull is not the
object (concavities no view sees, few views) and in how thick the band is at corners and thin parts (measured:
``benchmarks/occupancy_agreement.py``, docs/training.md). The per-voxel features are aggregated over the views
where the voxel is visible, with visibility from a z-buffer of the band's voxels (``aggregate="visible"``), or
over all views (``"all"``). The result is a :class:`~ss4d.data.synthetic.SyntheticClip`, so
``clip.save(folder)`` makes it a training clip like those of ``ss4d data synth`` (CLI: ``ss4d data import``).
"""

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ss4d.data.synthetic import SyntheticClip, aggregate_features, rgb_features
from ss4d.errors import InputError
from ss4d.utils.untrusted import confined, read_json_object

__all__ = ["check_rendered_source", "crossing_voxels", "load_rendered_clip", "surface_voxels", "visual_hull"]

# OpenGL/Blender camera axes (x right, y up, z backwards) -> OpenCV (x right, y down, z forwards)
_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def _grid_centres(resolution: int) -> tuple[Tensor, Tensor]:
    idx = torch.stack(torch.meshgrid(*[torch.arange(resolution)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return idx, (idx.float() + 0.5) / resolution - 0.5


def _project(points: Tensor, viewmats: Tensor, focal: float, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel coordinates ``(u, v)`` and camera depth ``z`` of ``[n, 3]`` points in ``V`` OpenCV views."""
    p = torch.einsum("vij,nj->vni", viewmats[:, :3, :3], points) + viewmats[:, None, :3, 3]
    z = p[..., 2]
    zc = z.clamp_min(1e-6)
    return focal * p[..., 0] / zc + size / 2, focal * p[..., 1] / zc + size / 2, z


def visual_hull(alphas: Tensor, viewmats: Tensor, focal: float, resolution: int, threshold: float = 0.5, *,
                conservative: bool = False) -> Tensor:  # fmt: skip
    """Solid occupancy ``[R, R, R]`` (bool, x-y-z order) carved from silhouettes ``alphas [V, S, S]``.

    A voxel counts as inside a view's silhouette when its centre projects onto alpha > ``threshold`` (with
    ``conservative``: its centre or any of its 8 corners, i.e. every voxel the silhouette cone touches);
    points that project outside an image are not carved by that view.
    """
    V, S = alphas.shape[0], alphas.shape[-1]
    idx, centres = _grid_centres(resolution)
    half = 0.5 / resolution
    corners = torch.tensor([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    inside = torch.zeros(V, centres.shape[0], dtype=torch.bool)
    for delta in torch.cat([torch.zeros(1, 3), corners]) if conservative else torch.zeros(1, 3):
        u, v, z = _project(centres + delta, viewmats, focal, S)
        in_image = (u >= 0) & (u < S) & (v >= 0) & (v < S) & (z > 0)
        ui, vi = u.long().clamp(0, S - 1), v.long().clamp(0, S - 1)
        hit = alphas[torch.arange(V)[:, None], vi, ui] > threshold
        inside |= hit | ~in_image
    return inside.all(0).reshape(resolution, resolution, resolution)


def surface_voxels(solid: Tensor) -> Tensor:
    """``[n, 3]`` int32 indices of the solid voxels with at least one empty 6-neighbour (or the grid edge)."""
    padded = F.pad(solid[None, None].float(), (1, 1, 1, 1, 1, 1))[0, 0]
    interior = solid.clone()
    R = solid.shape[0]
    for axis in range(3):
        for shift in (0, 2):
            interior &= padded.narrow(axis, shift, R).narrow((axis + 1) % 3, 1, R).narrow((axis + 2) % 3, 1, R) > 0
    return torch.nonzero(solid & ~interior).int()


def crossing_voxels(inside: Tensor) -> Tensor:
    """``[n, 3]`` int32 indices of the voxels whose inside/outside state differs from at least one 6-neighbour
    (beyond the grid counts as outside): the voxels on either side of the surface of ``inside [R, R, R]``."""
    R = inside.shape[0]
    padded = F.pad(inside[None, None].float(), (1, 1, 1, 1, 1, 1))[0, 0] > 0
    crossing = torch.zeros_like(inside)
    for axis in range(3):
        for shift in (0, 2):
            neighbour = padded.narrow(axis, shift, R).narrow((axis + 1) % 3, 1, R).narrow((axis + 2) % 3, 1, R)
            crossing |= neighbour != inside
    return torch.nonzero(crossing).int()


def _depth_maps(points: Tensor, viewmats: Tensor, focal: float, size: int, voxel: float) -> Tensor:
    """Z-buffer ``[V, S, S]`` (camera depth, 0 = empty) of voxel centres splatted with their projected size."""
    V = viewmats.shape[0]
    u, v, z = _project(points, viewmats, focal, size)
    depth = torch.full((V, size * size), float("inf"))
    radius = (focal * voxel * math.sqrt(3) / 2 / z.clamp_min(1e-6)).clamp(0.5, 8.0)
    r_max = int(math.ceil(float(radius.max())))
    view_index = torch.arange(V)[:, None].expand_as(u)
    for dy in range(-r_max, r_max + 1):
        for dx in range(-r_max, r_max + 1):
            ui, vi = (u + dx).floor().long(), (v + dy).floor().long()
            ok = (ui >= 0) & (ui < size) & (vi >= 0) & (vi < size) & (z > 0) & (max(abs(dx), abs(dy)) <= radius)
            flat = (vi * size + ui)[ok]
            depth.view(-1).scatter_reduce_(0, view_index[ok] * size * size + flat, z[ok], reduce="amin")
    depth[torch.isinf(depth)] = 0
    return depth.view(V, size, size)


def _read_rgba(path: Path, size: int | None) -> Tensor:
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"{path}: image named in transforms.json not found")
    with Image.open(path) as im:
        if im.mode not in ("RGBA", "LA") and "transparency" not in im.info:
            raise InputError(f"{path}: needs RGBA renders with a transparent background (got mode {im.mode})")
        im = im.convert("RGBA")
        if im.width != im.height:
            raise InputError(f"{path}: renders must be square, got {im.width}x{im.height}")
        if size is not None and im.width != size:
            im = im.resize((size, size), Image.Resampling.LANCZOS)
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


def _fail(path: Path, msg: str) -> InputError:
    return InputError(f"{path}: {msg}")


def _check_matrix(path: Path, where: str, m: object) -> None:
    ok = (isinstance(m, list) and len(m) == 4 and all(isinstance(r, list) and len(r) == 4 for r in m)
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for r in m for v in r))
    if not ok:
        raise _fail(path, f"{where}.transform_matrix: expected a 4x4 list of finite numbers (camera-to-world)")
    det = float(torch.linalg.det(torch.tensor(m, dtype=torch.float64)))
    if abs(det) < 1e-9:
        raise _fail(path, f"{where}.transform_matrix is singular (determinant {det:.3g}); it must be an invertible "
                          "camera-to-world matrix")  # fmt: skip


def _check_image(path: Path, where: str, rel: object, folder: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(rel, str) or not rel:
        raise _fail(path, f"{where}: expected an image path relative to the clip folder, got {rel!r}")
    image = confined(rel, folder, what=f"{path}: {where}", resolve=False)
    if not image.is_file():
        raise FileNotFoundError(f"{path}: {where}: {image} not found")
    try:
        with Image.open(image) as im:
            mode, w, h, transparency = im.mode, im.width, im.height, "transparency" in im.info
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise _fail(path, f"{where}: {image} is not a readable image ({e})") from e
    if mode not in ("RGBA", "LA") and not transparency:
        raise _fail(path, f"{where}: {image} needs RGBA with a transparent background (got mode {mode})")
    if w != h:
        raise _fail(path, f"{where}: {image} must be square, got {w}x{h}")


def check_rendered_source(folder: str | Path) -> tuple[Path, dict, float, dict[int, list[dict]]]:
    """Check a render folder's ``transforms.json`` and the headers of every image it names, without decoding
    pixels: ``ss4d data import`` runs this on every source before it writes the first clip.

    Returns ``(transforms.json path, spec, fov, views by time)``.

    Raises:
        FileNotFoundError: no ``transforms.json`` or a missing image.
        InputError: invalid JSON or field types, paths leaving the folder, singular or non-finite camera
            matrices, non-RGBA / non-square images, time steps with different view counts, several fields of view.
    """
    folder = Path(folder)
    path = folder / "transforms.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (expected a TRELLIS/NeRF-style render folder)")
    spec = read_json_object(path, error=InputError)
    entries = spec.get("frames")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise _fail(path, "`frames` must be a non-empty list of view objects")
    fovs = set()
    for i, e in enumerate(entries):
        f = e.get("camera_angle_x", spec.get("camera_angle_x"))
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 < f < math.pi:
            raise _fail(path, f"frames[{i}].camera_angle_x: expected the horizontal field of view in radians, "
                              f"in (0, pi), got {f!r}")  # fmt: skip
        fovs.add(float(f))
    if len(fovs) != 1:
        raise _fail(path, f"needs one `camera_angle_x` (radians) for every view, got {sorted(fovs)}")
    by_time: dict[int, list[dict]] = {}
    for i, e in enumerate(entries):
        if "file_path" not in e or "transform_matrix" not in e:
            raise _fail(path, f"frames[{i}] needs `file_path` and `transform_matrix`")
        t = e.get("time", 0)
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise _fail(path, f"frames[{i}].time: expected an integer frame index >= 0, got {t!r}")
        _check_matrix(path, f"frames[{i}]", e["transform_matrix"])
        _check_image(path, f"frames[{i}].file_path", e["file_path"], folder)
        by_time.setdefault(t, []).append(e)
    times = sorted(by_time)
    if times != list(range(len(times))):
        raise _fail(path, f"`time` values must be 0..T-1 without gaps, got {times}")
    counts = {len(v) for v in by_time.values()}
    if len(counts) != 1:
        raise _fail(path, f"every time step needs the same number of views, got {sorted(counts)}")
    if "video" in spec:
        video = spec["video"]
        if not isinstance(video, list) or len(video) != len(times):
            raise _fail(path, f"`video` needs a list of one image per time step ({len(times)}), got {video!r:.60}")
        for i, rel in enumerate(video):
            _check_image(path, f"video[{i}]", rel, folder)
    return path, spec, fovs.pop(), by_time


def load_rendered_clip(
    folder: str | Path,
    *,
    resolution: int = 16,
    image_size: int | None = None,
    features: Callable[[Tensor], Tensor] = rgb_features,
    aggregate: str = "visible",
) -> SyntheticClip:
    """Read one clip folder (layout in the module docstring) into a :class:`SyntheticClip`.

    Args:
        resolution: occupancy grid (the SLat resolution of the model to train).
        image_size: resize every image to this square size (default: keep the renders' size).
        features: image feature extractor ``[4, S, S] -> [C, s, s]`` (see :mod:`ss4d.models.features`).
        aggregate: ``"visible"`` or ``"all"`` views per voxel.

    Raises:
        FileNotFoundError / InputError: see :func:`check_rendered_source`; InputError also for a time step
        whose silhouettes carve no voxel.
    """
    if aggregate not in ("visible", "all"):
        raise InputError(f"`aggregate` must be 'visible' or 'all', got {aggregate!r}")
    folder = Path(folder)
    path, spec, fov, by_time = check_rendered_source(folder)
    times = sorted(by_time)

    views, mats = [], []
    for t in times:
        frame_views, frame_mats = [], []
        for e in by_time[t]:
            frame_views.append(_read_rgba(folder / e["file_path"], image_size))
            c2w = torch.tensor(e["transform_matrix"], dtype=torch.float64)
            frame_mats.append((_GL_TO_CV.double() @ torch.linalg.inv(c2w)).float())
        views.append(torch.stack(frame_views))
        mats.append(torch.stack(frame_mats))
    views_u8, viewmats = torch.stack(views), torch.stack(mats)
    sizes = {int(v.shape[-1]) for v in views}
    if len(sizes) != 1:
        raise InputError(f"{path}: images differ in size {sorted(sizes)}; pass image_size to resize them")
    size = sizes.pop()
    focal = 0.5 * size / math.tan(fov / 2)

    if "video" in spec:
        video = torch.stack([_read_rgba(folder / p, size) for p in spec["video"]])
    else:
        video = views_u8[:, 0].clone()

    coords, feats, vis = [], [], []
    for t in range(len(times)):
        rgba = views_u8[t].float() / 255
        xyz = crossing_voxels(visual_hull(rgba[:, 3], viewmats[t], focal, resolution))
        if xyz.shape[0] == 0:
            raise InputError(f"{path}: time {t} has no occupied voxel (empty alpha, or cameras that miss the object)")
        centres = (xyz.float() + 0.5) / resolution - 0.5
        depths = _depth_maps(centres, viewmats[t], focal, size, 1.0 / resolution)
        feat_maps = torch.stack([features(im) for im in rgba])
        f, count = aggregate_features(centres, viewmats[t], feat_maps, depths, focal, size, 1.5 / resolution,
                                      aggregate)  # fmt: skip
        coords.append(torch.cat([torch.full((xyz.shape[0], 1), t, dtype=torch.int32), xyz], 1))
        feats.append(f)
        vis.append(count)
    meta = {"source": str(folder), "num_frames": len(times), "resolution": resolution, "image_size": size,
            "num_views": views_u8.shape[1], "fov": math.degrees(fov), "aggregate": aggregate,
            "format": "ss4d-rendered-v1"}  # fmt: skip
    return SyntheticClip(video, views_u8, viewmats, focal, torch.cat(coords), torch.cat(feats).half(),
                         torch.cat(vis).short(), meta)  # fmt: skip
