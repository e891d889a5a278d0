"""Procedural 4D data: articulated SDF objects in motion, rendered by sphere tracing (no Gaussians involved).

Each clip is one object made of a body and limbs (spheres, boxes, capsules, tori, with stripe or checker
patterns that move with their part) under a mix of motions: bouncing, spinning, swinging limbs, bending
(non-rigid) and squash-and-stretch, at varied speeds. The object is normalised **once per sequence** into
the unit cube (the union of its extents over all frames), so motion is kept. Everything is deterministic
given the seed.

Per clip: a front-view RGBA video, ``num_views`` orbit views per frame with their cameras, per-frame
occupancy at ``resolution``, and per-voxel features aggregated over the views where the voxel is visible
(depth test against the rendered depth), from a pluggable image feature extractor.
"""

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor

from ss4d.ops.sparse import SpacetimeLayout, SparseTensor
from ss4d.utils.atomic import atomic_folder

__all__ = [
    "Part",
    "ProceduralScene",
    "SyntheticClip",
    "SyntheticScene",
    "aggregate_features",
    "front_viewmat",
    "make_clip",
    "occupancy_grid",
    "parts_albedo",
    "pattern_mix",
    "random_scene",
    "render_sdf",
    "rgb_features",
    "voxel_batch",
]

PRIMITIVES = ("sphere", "box", "capsule", "torus")
FRONT_EYE = (2.0, 0.0, 0.4)  # the fixed camera of every clip's front video, looking at the origin
MOTIONS = ("bounce", "spin", "swing", "bend", "squash")


@dataclass
class Part:
    kind: str
    size: tuple[float, float, float]
    offset: tuple[float, float, float]  # joint position relative to the body centre
    color: tuple[float, float, float]
    color2: tuple[float, float, float]
    pattern: str  # "plain", "stripes", "checker"
    swing_axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    swing_amp: float = 0.0
    bend: float = 0.0

    @property
    def colors(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        return self.color, self.color2


@runtime_checkable
class ProceduralScene(Protocol):
    """A scene that evaluates itself (e.g. :class:`ss4d.data.world.WorldScene`); the renderer, the occupancy and
    the normalisation below take it in place of a :class:`SyntheticScene`."""

    parts: list
    motions: list[str]

    def sdf(self, points: Tensor, phase: float) -> tuple[Tensor, Tensor, Tensor]: ...

    def albedo(self, idx: Tensor, local: Tensor) -> Tensor: ...

    def normalised(self, scale: float, center: tuple[float, float, float]) -> "ProceduralScene": ...


@dataclass
class SyntheticScene:
    """A body (part 0) and limbs, with global motion parameters (radians, cycles per clip)."""

    parts: list[Part]
    speed: float
    phase: float
    bounce: float
    spin: float
    squash: float
    scale: float = 1.0
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    motions: list[str] = field(default_factory=list)


Scene = SyntheticScene | ProceduralScene


def random_scene(seed: int) -> SyntheticScene:
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: float(torch.empty(1).uniform_(lo, hi, generator=g))  # noqa: E731
    pick = lambda xs: xs[int(torch.randint(len(xs), (1,), generator=g))]  # noqa: E731
    color = lambda: tuple(r(0.15, 0.95) for _ in range(3))  # noqa: E731
    motions = [m for m in MOTIONS if r(0, 1) < 0.6] or [pick(MOTIONS)]
    body = Part(pick(("sphere", "box", "capsule")), (r(0.25, 0.4), r(0.25, 0.4), r(0.3, 0.5)), (0.0, 0.0, 0.0),
                color(), color(), pick(("plain", "stripes", "checker")))  # fmt: skip
    parts = [body]
    for i in range(int(torch.randint(1, 4, (1,), generator=g))):
        ang = 2 * math.pi * i / 3 + r(-0.4, 0.4)
        offset = (0.9 * body.size[0] * math.cos(ang), 0.9 * body.size[1] * math.sin(ang), r(-0.2, 0.3))
        axis = (-math.sin(ang), math.cos(ang), 0.0)
        swing = r(0.3, 0.9) if "swing" in motions else 0.0
        bend = r(0.5, 1.5) if "bend" in motions else 0.0
        size = (r(0.06, 0.12), r(0.06, 0.12), r(0.2, 0.4))
        parts.append(Part(pick(PRIMITIVES), size, offset, color(), color(), pick(("plain", "stripes", "checker")), axis,
                          swing, bend))  # fmt: skip
    return SyntheticScene(
        parts, speed=r(0.5, 2.0), phase=r(0, 2 * math.pi), bounce=r(0.1, 0.3) if "bounce" in motions else 0.0,
        spin=r(0.5, 2.0) if "spin" in motions else 0.0, squash=r(0.1, 0.3) if "squash" in motions else 0.0,
        motions=motions,
    )  # fmt: skip


def _rot(axis: Tensor, angle: float) -> Tensor:
    axis = axis / axis.norm()
    x, y, z = axis.tolist()
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
                         [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
                         [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)]])  # fmt: skip


def _primitive(kind: str, p: Tensor, size: tuple[float, float, float]) -> Tensor:
    a, b, c = size
    if kind == "sphere":
        scale = torch.tensor(size)
        q = p / scale
        return (q.norm(dim=-1) - 1) * min(size)
    if kind == "box":
        q = p.abs() - torch.tensor(size)
        return q.clamp_min(0).norm(dim=-1) + q.amax(dim=-1).clamp_max(0)
    if kind == "capsule":  # along z, from -c to c, radius a
        z = p[..., 2].clamp(-c, c)
        return (p - torch.stack([torch.zeros_like(z), torch.zeros_like(z), z], -1)).norm(dim=-1) - a
    # torus in the xy plane: major radius c, minor a
    q = torch.stack([p[..., :2].norm(dim=-1) - c, p[..., 2]], -1)
    return q.norm(dim=-1) - a


def global_motion(p: Tensor, w: float, bounce: float, spin: float, squash: float) -> Tensor:
    """Points in the object's frame under the global motion at angle ``w``: bounce (z), spin (about z),
    squash-and-stretch (volume preserving)."""
    p = p - torch.tensor([0.0, 0.0, bounce * abs(math.sin(w))])
    p = p @ _rot(torch.tensor([0.0, 0.0, 1.0]), spin * w)
    s = 1 + squash * math.sin(2 * w)
    return p * torch.tensor([s**0.5, s**0.5, 1 / s])


def union(sdfs: list[Tensor], locals_: list[Tensor], scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """The union of the parts: ``(sdf [n], part index [n], that part's local coordinates [n, 3])``."""
    d, idx = torch.stack(sdfs).min(dim=0)
    local = torch.stack(locals_)[idx, torch.arange(idx.shape[0])]
    return d * scale, idx, local


def scene_sdf(scene: "Scene", points: Float[Tensor, "n 3"], phase: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(sdf [n], part index [n], local coordinates [n, 3])`` of the scene at time ``phase`` in [0, 1)."""
    if isinstance(scene, ProceduralScene):  # e.g. a scene of the broader world (ss4d.data.world)
        return scene.sdf(points, phase)
    w = 2 * math.pi * scene.speed * phase + scene.phase
    p = (points / scene.scale) + torch.tensor(scene.center)
    p = global_motion(p, w, scene.bounce, scene.spin, scene.squash)
    sdfs, locals_ = [], []
    for i, part in enumerate(scene.parts):
        q = p - torch.tensor(part.offset)
        if i > 0 and part.swing_amp:
            q = q @ _rot(torch.tensor(part.swing_axis), part.swing_amp * math.sin(w + i))
        if i > 0:
            q = q - torch.tensor([0.0, 0.0, part.size[2]])  # the limb hangs from its joint
        if part.bend:  # non-rigid: twist around z proportional to height
            ang = part.bend * math.sin(w) * q[..., 2]
            c, sn = torch.cos(ang), torch.sin(ang)
            q = torch.stack([c * q[..., 0] - sn * q[..., 1], sn * q[..., 0] + c * q[..., 1], q[..., 2]], -1)
        sdfs.append(_primitive(part.kind, q, part.size))
        locals_.append(q)
    return union(sdfs, locals_, scene.scale)


def pattern_mix(pattern: str, q: Tensor, size: tuple[float, float, float]) -> Tensor:
    """How much of a part's second colour shows ``[n]`` at its local points ``q [n, 3]``: ``"stripes"``
    (horizontal), ``"checker"``, ``"dots"``, ``"gradient"`` (bottom to top of a part of half-extents ``size``);
    ``"plain"`` (or anything else) shows only the first colour."""
    if pattern == "stripes":
        return (torch.sin(q[:, 2] * 40) > 0).float()
    if pattern == "checker":
        return ((torch.floor(q * 12).sum(-1) % 2) == 0).float()
    if pattern == "dots":
        return ((torch.frac(q * 8) - 0.5).norm(dim=-1) < 0.3).float()
    if pattern == "gradient":
        return (q[:, 2] / (2 * max(size)) + 0.5).clamp(0, 1)
    return torch.zeros(q.shape[0])


def parts_albedo(parts: list, idx: Tensor, local: Tensor) -> Tensor:
    """Albedo ``[n, 3]`` of surface points given their part ``idx [n]`` and part-local coordinates ``local [n, 3]``:
    each part blends its two ``colors`` by its ``pattern`` (:func:`pattern_mix`)."""
    out = torch.zeros(idx.shape[0], 3)
    for i, part in enumerate(parts):
        m = idx == i
        if not bool(m.any()):
            continue
        mix = pattern_mix(part.pattern, local[m], part.size)[:, None]
        a, b = (torch.tensor(c) for c in part.colors)
        out[m] = a * (1 - mix) + b * mix
    return out


def _albedo(scene: "Scene", idx: Tensor, local: Tensor) -> Tensor:
    if isinstance(scene, ProceduralScene):
        return scene.albedo(idx, local)
    return parts_albedo(scene.parts, idx, local)


def render_sdf(
    scene: "Scene", phase: float, viewmat: Tensor, focal: float, size: int, *, steps: int = 96
) -> tuple[Float[Tensor, "4 s s"], Float[Tensor, "s s"]]:
    """Sphere-trace one view (OpenCV camera, square image): ``(rgba, depth)`` (depth 0 where empty)."""
    rot, t = viewmat[:3, :3], viewmat[:3, 3]
    origin = -rot.T @ t
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    dirs_cam = torch.stack([(xs - size / 2) / focal, (ys - size / 2) / focal, torch.ones_like(xs)], -1).reshape(-1, 3)
    dirs = torch.nn.functional.normalize(dirs_cam @ rot, dim=-1)
    depth_scale = dirs_cam[:, 2] / dirs_cam.norm(dim=-1)  # ray length -> camera z
    dist = torch.full((dirs.shape[0],), 0.3)
    hit = torch.zeros(dirs.shape[0], dtype=torch.bool)
    for _ in range(steps):
        active = ~hit & (dist < 4.0)
        if not bool(active.any()):
            break
        d, _, _ = scene_sdf(scene, origin + dist[active, None] * dirs[active], phase)
        dist[active] = dist[active] + d.clamp_min(0) * 0.9
        hit[active] = d < 1e-3
    rgb = torch.zeros(dirs.shape[0], 3)
    if bool(hit.any()):
        p = origin + dist[hit, None] * dirs[hit]
        _, idx, local = scene_sdf(scene, p, phase)
        eps = 1e-3
        n = torch.stack([scene_sdf(scene, p + e, phase)[0] - scene_sdf(scene, p - e, phase)[0]
                         for e in torch.eye(3) * eps], -1)  # fmt: skip
        n = torch.nn.functional.normalize(n, dim=-1)
        light = torch.nn.functional.normalize(torch.tensor([0.4, -0.3, 0.85]), dim=0)
        shade = 0.35 + 0.65 * (n @ light).clamp_min(0)
        rgb[hit] = _albedo(scene, idx, local) * shade[:, None]
    depth = torch.where(hit, dist * depth_scale, torch.zeros_like(dist))
    rgba = torch.cat([rgb, hit.float()[:, None]], -1).reshape(size, size, 4).permute(2, 0, 1)
    return rgba, depth.reshape(size, size)


def normalise_scene(scene: "Scene", num_frames: int, grid: int = 48) -> "Scene":
    """Fit the union of the object's extents over all frames into [-0.45, 0.45]^3 (once per sequence)."""
    axis = torch.linspace(-1.5, 1.5, grid)
    pts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    lo, hi = torch.full((3,), 1e9), torch.full((3,), -1e9)
    for t in range(num_frames):
        inside = pts[scene_sdf(scene, pts, t / num_frames)[0] < 0]
        if inside.shape[0]:
            lo, hi = torch.minimum(lo, inside.amin(0)), torch.maximum(hi, inside.amax(0))
    if bool((lo > hi).any()):
        raise ValueError("the procedural object is empty")
    centre = (lo + hi) / 2
    scale = 0.9 / float((hi - lo).max() + 3.0 / grid)
    if isinstance(scene, ProceduralScene):
        return scene.normalised(scale, tuple(centre.tolist()))
    return SyntheticScene(**{**asdict(scene), "parts": scene.parts, "scale": scale, "center": tuple(centre.tolist())})


def occupancy(scene: "Scene", phase: float, resolution: int) -> Tensor:
    """Surface voxels ``[n, 3]`` (x, y, z) of a ``resolution^3`` grid over [-0.5, 0.5]^3."""
    idx = torch.stack(torch.meshgrid(*[torch.arange(resolution)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = (idx.float() + 0.5) / resolution - 0.5
    d = scene_sdf(scene, centres, phase)[0]
    return idx[d.abs() <= 0.5 * math.sqrt(3) / resolution].int()


def front_viewmat() -> Float[Tensor, "4 4"]:
    """World -> camera matrix of the front video's fixed camera (same focal and size as the orbit views)."""
    from ss4d.render.camera import look_at

    return look_at(torch.tensor(FRONT_EYE), torch.zeros(3))


def rgb_features(image: Float[Tensor, "4 s s"]) -> Float[Tensor, "c s s"]:
    """Cheap features for the tiny model: premultiplied RGB and a 2x-blurred copy (6 channels)."""
    rgb = image[:3] * image[3:4]
    blur = torch.nn.functional.avg_pool2d(rgb[None], 3, 1, 1)[0]
    return torch.cat([rgb, blur])


@dataclass
class SyntheticClip:
    video: Tensor  # [T, 4, S, S] front view RGBA uint8
    views: Tensor  # [T, V, 4, S, S] uint8
    viewmats: Tensor  # [T, V, 4, 4]
    focal: float  # pixels (square images)
    coords: Tensor  # [N, 4] int32 (t, x, y, z)
    features: Tensor  # [N, C] float16
    visible_views: Tensor  # [N] int16: views the voxel was visible in (0 = aggregated over all)
    meta: dict

    def save(self, folder: str | Path) -> Path:
        """Write ``data.safetensors`` + ``meta.json`` into ``folder``, whole or not at all (a rerun replaces it)."""
        folder = Path(folder)
        tensors = {"video": self.video, "views": self.views, "viewmats": self.viewmats, "coords": self.coords,
                   "features": self.features, "visible_views": self.visible_views}  # fmt: skip
        with atomic_folder(folder, overwrite=True) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "data.safetensors"))
            (tmp / "meta.json").write_text(json.dumps({**self.meta, "focal": self.focal}, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "SyntheticClip":
        folder = Path(folder)
        for name in ("data.safetensors", "meta.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} not found: not a clip written by `ss4d data synth`")
        t = load_file(str(folder / "data.safetensors"))
        meta = json.loads((folder / "meta.json").read_text())
        return cls(t["video"], t["views"], t["viewmats"], float(meta["focal"]), t["coords"], t["features"],
                   t["visible_views"], meta)  # fmt: skip


def make_clip(
    seed: int,
    *,
    num_frames: int = 8,
    resolution: int = 16,
    image_size: int = 64,
    num_views: int = 4,
    fov: float = 40.0,
    features: Callable[[Tensor], Tensor] = rgb_features,
    aggregate: str = "visible",
    world: str = "v1",
) -> SyntheticClip:
    """Generate one clip (see the module docstring). ``aggregate``: "visible" (depth-tested views, voxels
    seen by none fall back to all views) or "all" (mean over every view). ``world``: ``"v1"`` (this module's
    objects: ss4d-tiny's training and evaluation data) or the broader world of :mod:`ss4d.data.world`,
    ``"families"`` (training families) / ``"families-heldout"`` (held-out families)."""
    from ss4d.render.camera import fov_to_focal, orbit_view

    if aggregate not in ("visible", "all"):
        raise ValueError(f"`aggregate` must be 'visible' or 'all', got {aggregate!r}")
    if world not in ("v1", "families", "families-heldout"):
        raise ValueError(f"`world` must be 'v1', 'families' or 'families-heldout', got {world!r}")
    if world == "v1":
        scene = random_scene(seed)
    else:
        from ss4d.data.world import world_scene

        scene = world_scene(seed, split="train" if world == "families" else "heldout")
    scene = normalise_scene(scene, num_frames)
    focal = fov_to_focal(fov, image_size)
    g = torch.Generator().manual_seed(seed + 1)
    front = front_viewmat()
    video, views, mats, all_coords, all_feats, all_vis = [], [], [], [], [], []
    for t in range(num_frames):
        phase = t / num_frames
        rgba, _ = render_sdf(scene, phase, front, focal, image_size)
        video.append(rgba)
        az0 = float(torch.rand(1, generator=g)) * 2 * math.pi
        frame_views, frame_mats, feat_maps, depths = [], [], [], []
        for v in range(num_views):
            az = az0 + 2 * math.pi * v / num_views
            el = math.radians(float(torch.empty(1).uniform_(-10, 40, generator=g)))
            view = orbit_view(2.0, az, el)
            rgba_v, depth_v = render_sdf(scene, phase, view, focal, image_size)
            frame_views.append(rgba_v)
            frame_mats.append(view)
            feat_maps.append(features(rgba_v))
            depths.append(depth_v)
        xyz = occupancy(scene, phase, resolution)
        centres = (xyz.float() + 0.5) / resolution - 0.5
        feats, vis = aggregate_features(centres, torch.stack(frame_mats), torch.stack(feat_maps),
                                        torch.stack(depths), focal, image_size, 1.5 / resolution,
                                        aggregate)  # fmt: skip
        views.append(torch.stack(frame_views))
        mats.append(torch.stack(frame_mats))
        all_coords.append(torch.cat([torch.full((xyz.shape[0], 1), t, dtype=torch.int32), xyz], 1))
        all_feats.append(feats)
        all_vis.append(vis)
    to_u8 = lambda x: (x.clamp(0, 1) * 255).round().to(torch.uint8)  # noqa: E731
    meta = {"seed": seed, "num_frames": num_frames, "resolution": resolution, "image_size": image_size,
            "num_views": num_views, "fov": fov, "aggregate": aggregate, "motions": scene.motions,
            "parts": [p.kind for p in scene.parts], "format": "ss4d-synthetic-v1"}  # fmt: skip
    if world != "v1":
        meta.update(world=world, family=scene.family)
    return SyntheticClip(
        to_u8(torch.stack(video)), to_u8(torch.stack(views)), torch.stack(mats), focal, torch.cat(all_coords),
        torch.cat(all_feats).half(), torch.cat(all_vis).short(), meta,
    )  # fmt: skip


def occupancy_grid(clip: SyntheticClip, frames: int | None = None) -> Tensor:
    """Dense occupancy ``[T, 1, R, R, R]`` of a clip's first ``frames`` frames."""
    R, T = int(clip.meta["resolution"]), frames or int(clip.meta["num_frames"])
    c = clip.coords[clip.coords[:, 0] < T].long()
    grid = torch.zeros(T, 1, R, R, R)
    grid[c[:, 0], 0, c[:, 1], c[:, 2], c[:, 3]] = 1.0
    return grid


def voxel_batch(clip: SyntheticClip, frames: int) -> SparseTensor:
    """A clip's voxel features on its first ``frames`` frames, layout ``(1, frames)``."""
    keep = clip.coords[:, 0] < frames
    R = int(clip.meta["resolution"])
    return SparseTensor(clip.features[keep].float(), clip.coords[keep], SpacetimeLayout(1, frames),
                        spatial_shape=(R, R, R))  # fmt: skip


def aggregate_features(centres, mats, feat_maps, depths, focal, size, tol, mode):
    """Per-voxel features ``[n, C]`` and visible-view counts ``[n]``: the mean of ``feat_maps [V, C, s, s]``
    sampled (bilinear) at each centre's projection over the views whose depth map ``depths [V, S, S]`` agrees
    with the centre's camera depth within ``tol`` (``mode="visible"``); voxels seen by no view, or
    ``mode="all"``, take the mean over every view."""
    V, C = feat_maps.shape[:2]
    p = torch.einsum("vij,nj->vni", mats[:, :3, :3], centres) + mats[:, None, :3, 3]  # [V, n, 3]
    z = p[..., 2].clamp_min(1e-6)
    u, v = focal * p[..., 0] / z + size / 2, focal * p[..., 1] / z + size / 2
    grid = torch.stack([u / size * 2 - 1, v / size * 2 - 1], -1)[:, :, None]  # [V, n, 1, 2]
    sampled = torch.nn.functional.grid_sample(feat_maps, grid, align_corners=False)[..., 0]  # [V, C, n]
    ui, vi = u.long().clamp(0, size - 1), v.long().clamp(0, size - 1)
    surface = depths[torch.arange(V)[:, None], vi, ui]  # [V, n]
    visible = (
        (surface > 0) & ((surface - z).abs() <= tol) if mode == "visible" else torch.ones_like(z, dtype=torch.bool)
    )
    count = visible.sum(0)
    mean_vis = (sampled * visible[:, None]).sum(0) / count.clamp_min(1)
    mean_all = sampled.mean(0)
    feats = torch.where(count[None] > 0, mean_vis, mean_all).T  # [n, C]
    return feats, count
