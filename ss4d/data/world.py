"""A broader procedural world (``ss4d data synth --world families``): articulated multi-part objects from six
families, random palettes and textures, composable motions, and framing that leaves the object off-centre.

Families (each an articulated SDF assembly; every part is a primitive with its own texture):

* ``creature``: a body, a head and 2-6 legs swinging in a gait (alternating phases);
* ``chain``: 3-6 hinged links with a wave travelling down the chain;
* ``winged``: a body with two flapping wings (flat boxes hinged at the shoulders) and a tail;
* ``wheeled``: a chassis on 2-4 spinning wheels (tori), with a bobbing cabin;
* ``plant``: a stem that grows, with petals that open;
* ``blob``: a body that bounces and deforms (squash-and-stretch and a travelling bulge), with small satellites.

Global motions compose on top, each on with its own probability: ``bounce``, ``spin``, ``drift`` (the object
travels along a curve, so after the once-per-sequence normalisation it sits away from the centre in some
frames) and ``squash``. Palettes are harmonies around a random hue; patterns are plain, stripes, checker, dots
or a gradient. Everything is a pure function of the seed.

**Held-out split.** ``TRAIN_FAMILIES`` are the only families a training seed draws; ``HELDOUT_FAMILIES``
(``winged``, ``plant``) are drawn only by :func:`world_scene` with ``split="heldout"``. ss4d's convention: train
on seeds 0..99999 with ``split="train"``, evaluate on seeds from 100000 with ``split="heldout"``, so the
evaluation measures generalisation to unseen families and unseen seeds.
"""

import colorsys
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ss4d.data.synthetic import _primitive, _rot, global_motion, parts_albedo, union

__all__ = ["FAMILIES", "HELDOUT_FAMILIES", "TRAIN_FAMILIES", "WorldPart", "WorldScene", "world_scene"]

TRAIN_FAMILIES = ("creature", "chain", "wheeled", "blob")
HELDOUT_FAMILIES = ("winged", "plant")
FAMILIES = TRAIN_FAMILIES + HELDOUT_FAMILIES
PATTERNS = ("plain", "stripes", "checker", "dots", "gradient")
GLOBAL_MOTIONS = ("bounce", "spin", "drift", "squash")


@dataclass
class WorldPart:
    """A primitive attached at ``anchor`` (body frame), rotating about ``axis`` by ``amp * sin(w + phase)``
    (or continuously by ``spin_rate * w`` for wheels), hanging ``hang`` along its local -z after the joint, and
    scaled by ``1 + grow * (sin(w) * 0.5 + 0.5) - grow``."""

    kind: str
    size: tuple[float, float, float]
    anchor: tuple[float, float, float]
    colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    pattern: str
    axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    amp: float = 0.0
    phase: float = 0.0
    spin_rate: float = 0.0
    hang: float = 0.0
    grow: float = 0.0
    rest: tuple[float, float, float] = (0.0, 0.0, 0.0)  # a fixed tilt (axis-angle) before the motion


@dataclass
class WorldScene:
    """One object of the world; duck-types :class:`~ss4d.data.synthetic.SyntheticScene` for the renderer
    (``sdf``, ``albedo``, ``normalised``, ``motions``, ``parts``)."""

    family: str
    parts: list[WorldPart]
    speed: float
    motions: list[str] = field(default_factory=list)
    bounce: float = 0.0
    spin: float = 0.0
    squash: float = 0.0
    drift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bulge: float = 0.0
    scale: float = 1.0
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def normalised(self, scale: float, center: tuple[float, float, float]) -> "WorldScene":
        return WorldScene(**{**self.__dict__, "scale": scale, "center": center})

    def sdf(self, points: Tensor, phase: float) -> tuple[Tensor, Tensor, Tensor]:
        """``(sdf [n], part index [n], local coordinates [n, 3])`` at time ``phase`` in [0, 1)."""
        w = 2 * math.pi * self.speed * phase
        p = points / self.scale + torch.tensor(self.center)
        dx, dy, dz = self.drift
        p = p - torch.tensor([dx * math.sin(w / self.speed), dy * math.sin(2 * w / self.speed), dz])
        p = global_motion(p, w, self.bounce, self.spin, self.squash)
        sdfs, locals_ = [], []
        for i, part in enumerate(self.parts):
            q = p - torch.tensor(part.anchor)
            if any(part.rest):
                rest = torch.tensor(part.rest)
                q = q @ _rot(rest, float(rest.norm()))
            angle = part.spin_rate * w if part.spin_rate else part.amp * math.sin(w + part.phase)
            if angle:
                q = q @ _rot(torch.tensor(part.axis), angle)
            g = 1 + part.grow * (0.5 * math.sin(w) + 0.5) - part.grow if part.grow else 1.0
            q = q / g
            if part.hang:
                q = q + torch.tensor([0.0, 0.0, part.hang])
            if i == 0 and self.bulge:  # a bulge travelling around the body (non-rigid)
                q = q * (1 - self.bulge * torch.sin(3 * q[..., 2:3] * 6 + w).clamp_min(0) * 0.3)
            sdfs.append(_primitive(part.kind, q, part.size) * g)
            locals_.append(q)
        return union(sdfs, locals_, self.scale)

    def albedo(self, idx: Tensor, local: Tensor) -> Tensor:
        return parts_albedo(self.parts, idx, local)


class _Rand:
    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)

    def u(self, lo: float | int, hi: float | int) -> float:
        return float(torch.empty(1).uniform_(lo, hi, generator=self.g))

    def i(self, lo: int, hi: int) -> int:  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=self.g))

    def pick(self, xs):
        return xs[self.i(0, len(xs) - 1)]


def _palette(r: _Rand) -> list[tuple[float, float, float]]:
    """Five colours in a random harmony (analogous, complementary or triadic) around a random hue."""
    hue = r.u(0, 1)
    offsets = r.pick(((0.0, 0.08, -0.08), (0.0, 0.5, 0.45), (0.0, 1 / 3, 2 / 3)))
    out = []
    for k in range(5):
        h = (hue + offsets[k % 3] + r.u(-0.03, 0.03)) % 1.0
        out.append(colorsys.hsv_to_rgb(h, r.u(0.35, 0.95), r.u(0.45, 0.95)))
    return out


def _texture(r: _Rand, palette) -> dict:
    return {"colors": (r.pick(palette), r.pick(palette)), "pattern": r.pick(PATTERNS)}


def _creature(r: _Rand, pal) -> list[WorldPart]:
    body = WorldPart(r.pick(("sphere", "box", "capsule")), (r.u(0.3, 0.45), r.u(0.18, 0.28), r.u(0.18, 0.28)),
                     (0.0, 0.0, 0.0), **_texture(r, pal))  # fmt: skip
    parts = [body, WorldPart("sphere", (r.u(0.12, 0.18),) * 3, (body.size[0] + 0.08, 0.0, body.size[2] * 0.8),
                             **_texture(r, pal))]  # fmt: skip
    pairs = r.i(1, 3)
    leg = (r.u(0.05, 0.08), r.u(0.05, 0.08), r.u(0.16, 0.26))
    for k in range(pairs):
        x = body.size[0] * (0.7 - 1.4 * k / max(pairs - 1, 1)) if pairs > 1 else 0.0
        for side in (-1, 1):
            parts.append(WorldPart("capsule", leg, (x, side * body.size[1] * 0.8, -body.size[2] * 0.5),
                                   **_texture(r, pal), axis=(0.0, 1.0, 0.0), amp=r.u(0.4, 0.8),
                                   phase=math.pi * ((k + (side > 0)) % 2), hang=leg[2]))  # fmt: skip
    return parts


def _chain(r: _Rand, pal) -> list[WorldPart]:
    n, length = r.i(3, 6), r.u(0.12, 0.18)
    amp, lag = r.u(0.3, 0.7), r.u(0.5, 1.2)
    kind = r.pick(("capsule", "box", "sphere"))
    tex = _texture(r, pal)
    parts = []
    for k in range(n):
        size = (r.u(0.07, 0.1), r.u(0.07, 0.1), length) if kind != "sphere" else (length,) * 3
        parts.append(WorldPart(kind, size, (0.0, 0.0, (n / 2 - k) * 2 * length * 0.9), **(tex if k % 2 else
                               _texture(r, pal)), axis=(1.0, 0.0, 0.0), amp=amp * (k + 1) / n,
                               phase=-lag * k))  # fmt: skip
    return parts


def _winged(r: _Rand, pal) -> list[WorldPart]:
    body = WorldPart("capsule", (r.u(0.1, 0.15), 0.0, r.u(0.25, 0.35)), (0.0, 0.0, 0.0), **_texture(r, pal),
                     rest=(0.0, math.pi / 2, 0.0))  # fmt: skip
    span, amp = r.u(0.3, 0.45), r.u(0.5, 0.9)
    wing_tex = _texture(r, pal)
    parts = [body]
    for side in (-1, 1):
        parts.append(WorldPart("box", (r.u(0.12, 0.2), span / 2, 0.02), (0.0, side * (0.1 + span / 2), 0.05),
                               **wing_tex, axis=(1.0, 0.0, 0.0), amp=side * amp))  # fmt: skip
    parts.append(WorldPart("box", (0.12, 0.08, 0.02), (-0.4, 0.0, 0.05), **_texture(r, pal), axis=(0.0, 1.0, 0.0),
                           amp=0.3, phase=1.0))  # fmt: skip
    return parts


def _wheeled(r: _Rand, pal) -> list[WorldPart]:
    chassis = WorldPart("box", (r.u(0.3, 0.42), r.u(0.16, 0.24), r.u(0.07, 0.12)), (0.0, 0.0, 0.0), **_texture(r, pal))
    parts = [chassis, WorldPart(r.pick(("box", "sphere")), (0.16, 0.14, r.u(0.08, 0.14)),
                                (r.u(-0.1, 0.1), 0.0, chassis.size[2] + 0.1), **_texture(r, pal),
                                axis=(0.0, 1.0, 0.0), amp=r.u(0.1, 0.3))]  # fmt: skip
    radius, rate = r.u(0.09, 0.14), r.pick((1.0, 2.0, 3.0))
    wheel_tex = _texture(r, pal)
    xs = (-0.7, 0.7) if r.u(0, 1) < 0.5 else (0.0,)
    for x in xs:
        for side in (-1, 1):
            parts.append(WorldPart("torus", (radius * 0.35, 0.0, radius), (x * chassis.size[0], side * chassis.size[1],
                                   -chassis.size[2]), **wheel_tex, rest=(math.pi / 2, 0.0, 0.0),
                                   axis=(0.0, 0.0, 1.0), spin_rate=rate))  # fmt: skip
    return parts


def _plant(r: _Rand, pal) -> list[WorldPart]:
    stem_h = r.u(0.3, 0.45)
    parts = [WorldPart("capsule", (r.u(0.04, 0.06), 0.0, stem_h), (0.0, 0.0, -0.1), **_texture(r, pal),
                       grow=r.u(0.2, 0.4))]  # fmt: skip
    petals, open_amp = r.i(3, 6), r.u(0.5, 1.0)
    petal_tex = _texture(r, pal)
    for k in range(petals):
        a = 2 * math.pi * k / petals
        parts.append(WorldPart("box", (0.05, r.u(0.04, 0.07), r.u(0.14, 0.2)),
                               (0.08 * math.cos(a), 0.08 * math.sin(a), stem_h + 0.05), **petal_tex,
                               axis=(-math.sin(a), math.cos(a), 0.0), amp=open_amp, phase=-math.pi / 2,
                               hang=-0.12))  # fmt: skip
    parts.append(WorldPart("sphere", (0.07,) * 3, (0.0, 0.0, stem_h + 0.05), **_texture(r, pal), grow=0.3))
    return parts


def _blob(r: _Rand, pal) -> list[WorldPart]:
    parts = [WorldPart(r.pick(("sphere", "capsule")), (r.u(0.25, 0.35), r.u(0.25, 0.35), r.u(0.25, 0.4)),
                       (0.0, 0.0, 0.0), **_texture(r, pal))]  # fmt: skip
    for k in range(r.i(0, 3)):
        a = r.u(0, 2 * math.pi)
        anchor = (0.42 * math.cos(a), 0.42 * math.sin(a), r.u(-0.2, 0.2))
        parts.append(WorldPart("sphere", (r.u(0.06, 0.1),) * 3, anchor, **_texture(r, pal), axis=(0.0, 0.0, 1.0),
                               amp=r.u(0.3, 0.8), phase=float(k)))  # fmt: skip
    return parts


_BUILDERS = {"creature": _creature, "chain": _chain, "winged": _winged, "wheeled": _wheeled, "plant": _plant,
             "blob": _blob}  # fmt: skip


def world_scene(seed: int, *, split: str = "train", family: str | None = None) -> WorldScene:
    """The object of ``seed``: a family drawn from ``split``'s families (or ``family``), its parts and motions."""
    if split not in ("train", "heldout"):
        raise ValueError(f"`split` must be 'train' or 'heldout', got {split!r}")
    families = TRAIN_FAMILIES if split == "train" else HELDOUT_FAMILIES
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")
    r = _Rand(seed)
    fam = family or r.pick(families)
    parts = _BUILDERS[fam](r, _palette(r))
    motions = [m for m in GLOBAL_MOTIONS if r.u(0, 1) < 0.4]
    scene = WorldScene(fam, parts, speed=r.pick((0.5, 1.0, 1.0, 2.0)), motions=[fam, *motions])
    if "bounce" in motions:
        scene.bounce = r.u(0.1, 0.3)
    if "spin" in motions:
        scene.spin = r.u(0.3, 1.0)
    if "squash" in motions or fam == "blob":
        scene.squash = r.u(0.1, 0.3)
    if "drift" in motions:
        scene.drift = (r.u(-0.5, 0.5), r.u(-0.4, 0.4), r.u(-0.1, 0.1))
    if fam == "blob":
        scene.bulge = r.u(0.3, 0.8)
    return scene
