"""A differentiable pure-PyTorch 3D Gaussian rasteriser (CPU and CUDA).

Per camera: transform to camera space, project the means, EWA-project the covariances
(``J W Sigma W^T J^T``) plus a 2D filter ``filter_2d * I`` (pixels^2, the mip-splatting kernel TRELLIS uses,
0.1), sort by depth, and alpha-composite front to back:

``alpha = min(0.99, opacity * exp(-0.5 d^T Sigma2d^-1 d))`` (contributions below 1/255 are dropped),
``C = sum_i T_i alpha_i c_i + T_final * background`` with ``T_i = prod_{j<i} (1 - alpha_j)``.

Tiles of ``tile`` x ``tile`` pixels only visit the Gaussians whose exact 1/255 footprint overlaps them,
so the result equals the brute-force sum; Gaussians are processed in chunks per tile with the
transmittance carried between chunks, which bounds memory. Everything is autograd-differentiable.
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ss4d.ops._optional import AnyDevice, CudaPackage, require
from ss4d.ops.registry import BackendRegistry
from ss4d.render.camera import Camera
from ss4d.representations.gaussians import Gaussians, quaternion_to_matrix

__all__ = [
    "GsplatRenderer",
    "RenderOutput",
    "TorchRenderer",
    "project_gaussians",
    "rasterize",
    "render_backends",
    "render_gaussians",
]

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99


@dataclass
class RenderOutput:
    color: Float[Tensor, "h w 3"]
    alpha: Float[Tensor, "h w"]
    depth: Float[Tensor, "h w"]  # alpha-weighted mean depth (0 where empty)


@dataclass
class Projected:
    mean2d: Tensor  # [n, 2] pixels
    conic: Tensor  # [n, 3] inverse 2D covariance (a, b, c) of [[a, b], [b, c]]
    depth: Tensor  # [n]
    radius: Tensor  # [n] pixels of the 1/255 footprint (0 = culled)
    opacity: Tensor  # [n]
    color: Tensor  # [n, 3]


def project_gaussians(
    means: Float[Tensor, "n 3"],
    quats: Float[Tensor, "n 4"],
    scales: Float[Tensor, "n 3"],
    opacities: Float[Tensor, " n"],
    colors: Float[Tensor, "n 3"],
    camera: Camera,
    *,
    filter_2d: float = 0.1,
    near: float = 0.01,
) -> Projected:
    view = camera.viewmat.to(means)
    W, t = view[:3, :3], view[:3, 3]
    p = means @ W.T + t
    z = p[:, 2]
    valid = z > near
    zs = torch.where(valid, z, torch.ones_like(z))
    R = quaternion_to_matrix(torch.nn.functional.normalize(quats, dim=-1))
    M = R * scales[:, None, :]
    cov3 = M @ M.transpose(1, 2)
    zeros = torch.zeros_like(zs)
    J = torch.stack(
        [camera.fx / zs, zeros, -camera.fx * p[:, 0] / zs**2, zeros, camera.fy / zs, -camera.fy * p[:, 1] / zs**2], -1
    ).view(-1, 2, 3)
    T = J @ W
    cov2 = T @ cov3 @ T.transpose(1, 2) + filter_2d * torch.eye(2, dtype=means.dtype, device=means.device)
    a, b, c = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
    det = a * c - b * b
    conic = torch.stack([c / det, -b / det, a / det], -1)
    mean2d = torch.stack([camera.fx * p[:, 0] / zs + camera.cx, camera.fy * p[:, 1] / zs + camera.cy], -1)
    # exact footprint: alpha >= 1/255 needs mahalanobis^2 <= 2 ln(255 o), and |d|^2 <= lambda_max * that
    lam = 0.5 * (a + c) + torch.sqrt((0.25 * (a - c) ** 2 + b * b).clamp_min(0))
    level = 2 * torch.log((opacities / ALPHA_MIN).clamp_min(1.0))
    radius = torch.sqrt(lam * level).detach()
    radius = torch.where(valid & (opacities > ALPHA_MIN), radius, torch.zeros_like(radius))
    return Projected(mean2d, conic, z, radius, opacities, colors)


def rasterize(
    proj: Projected,
    width: int,
    height: int,
    *,
    background: Float[Tensor, " 3"] | None = None,
    tile: int = 16,
    chunk: int = 128,
) -> RenderOutput:
    """Composite projected Gaussians into a ``height x width`` image (see the module docstring)."""
    device, dtype = proj.mean2d.device, proj.mean2d.dtype
    bg = torch.zeros(3, device=device, dtype=dtype) if background is None else background.to(device, dtype)
    tx, ty = math.ceil(width / tile), math.ceil(height / tile)
    n_tiles = tx * ty
    # tile ranges of every Gaussian's footprint
    alive = torch.nonzero(proj.radius > 0).squeeze(1)
    m, r = proj.mean2d[alive].detach(), proj.radius[alive]
    x0 = ((m[:, 0] - r) / tile).floor().clamp(0, tx - 1).long()
    x1 = ((m[:, 0] + r) / tile).floor().clamp(0, tx - 1).long()
    y0 = ((m[:, 1] - r) / tile).floor().clamp(0, ty - 1).long()
    y1 = ((m[:, 1] + r) / tile).floor().clamp(0, ty - 1).long()
    inside = (m[:, 0] + r >= 0) & (m[:, 0] - r < width) & (m[:, 1] + r >= 0) & (m[:, 1] - r < height)
    alive, x0, x1, y0, y1 = alive[inside], x0[inside], x1[inside], y0[inside], y1[inside]
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    counts = nx * ny
    pair_g = torch.repeat_interleave(torch.arange(len(alive), device=device), counts)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    k = torch.arange(len(pair_g), device=device) - first
    pair_tile = (y0[pair_g] + k // nx[pair_g]) * tx + x0[pair_g] + k % nx[pair_g]
    # sort pairs by (tile, depth)
    depth_rank = torch.empty_like(alive)
    depth_rank[torch.argsort(proj.depth[alive].detach())] = torch.arange(len(alive), device=device)
    order = torch.argsort(pair_tile * max(len(alive), 1) + depth_rank[pair_g])
    pair_g, pair_tile = alive[pair_g[order]], pair_tile[order]
    per_tile = torch.bincount(pair_tile, minlength=n_tiles)
    start = torch.cumsum(per_tile, 0) - per_tile
    # pixel centres of every tile: [n_tiles, tile*tile, 2]
    py, px = torch.meshgrid(torch.arange(tile, device=device), torch.arange(tile, device=device), indexing="ij")
    tiles_y, tiles_x = (
        torch.div(torch.arange(n_tiles, device=device), tx, rounding_mode="floor"),
        torch.arange(n_tiles, device=device) % tx,
    )
    pix_x = (tiles_x[:, None] * tile + px.flatten()[None]).to(dtype) + 0.5
    pix_y = (tiles_y[:, None] * tile + py.flatten()[None]).to(dtype) + 0.5
    P = tile * tile
    color = torch.zeros(n_tiles, P, 3, device=device, dtype=dtype)
    depth = torch.zeros(n_tiles, P, device=device, dtype=dtype)
    trans = torch.ones(n_tiles, P, device=device, dtype=dtype)
    max_count = int(per_tile.max()) if n_tiles else 0
    for c0 in range(0, max_count, chunk):
        act = torch.nonzero(per_tile > c0).squeeze(1)  # only tiles that still have Gaussians left
        slot = c0 + torch.arange(chunk, device=device)
        valid = slot[None, :] < per_tile[act, None]  # [active tiles, chunk]
        idx = torch.where(valid, start[act, None] + slot[None, :], 0)
        g = pair_g[idx]
        dx = pix_x[act, None, :] - proj.mean2d[g][..., 0:1]  # [active, chunk, P]
        dy = pix_y[act, None, :] - proj.mean2d[g][..., 1:2]
        con = proj.conic[g]
        power = -0.5 * (con[..., 0:1] * dx * dx + con[..., 2:3] * dy * dy) - con[..., 1:2] * dx * dy
        alpha = (proj.opacity[g][..., None] * torch.exp(power)).clamp(max=ALPHA_MAX)
        alpha = torch.where(valid[..., None] & (alpha >= ALPHA_MIN) & (power <= 0), alpha, torch.zeros_like(alpha))
        cum = torch.cumprod(1 - alpha, dim=1)
        t_act = trans[act]
        w = t_act[:, None, :] * torch.cat([torch.ones_like(cum[:, :1]), cum[:, :-1]], dim=1) * alpha
        color = color.index_add(0, act, torch.einsum("tkp,tkc->tpc", w, proj.color[g]))
        depth = depth.index_add(0, act, (w * proj.depth[g][..., None]).sum(1))
        trans = trans.index_copy(0, act, t_act * cum[:, -1])
    color = color + trans[..., None] * bg
    alpha_img = 1 - trans

    def to_image(x: Tensor) -> Tensor:
        x = x.view(ty, tx, tile, tile, *x.shape[2:]).transpose(1, 2).reshape(ty * tile, tx * tile, *x.shape[2:])
        return x[:height, :width]

    acc = to_image(alpha_img)
    return RenderOutput(to_image(color), acc, to_image(depth) / acc.clamp_min(1e-8) * (acc > 0))


def render_gaussians(
    gaussians: Gaussians,
    camera: Camera,
    *,
    background: Tensor | None = None,
    filter_2d: float = 0.1,
    tile: int = 16,
    chunk: int = 128,
    backend: str = "auto",
) -> RenderOutput:
    """Render activated :class:`Gaussians` (SH degree 0 colour ``0.28209479 f_dc + 0.5``, clamped at 0).

    ``backend``: a name of :data:`render_backends` (``"torch"``: this module; ``"gsplat"``: CUDA,
    ``pip install gsplat``) or ``"auto"`` = the available one of highest priority (gsplat for CUDA tensors
    when it is installed, else torch).
    """
    colors = (0.28209479 * gaussians.features[:, 0] + 0.5).clamp_min(0)
    impl = render_backends.resolve(backend, gaussians.xyz.device)
    return impl.render(gaussians, colors, camera, background=background, filter_2d=filter_2d, tile=tile, chunk=chunk)


class TorchRenderer(AnyDevice):
    """This module's tiled rasteriser: any device, autograd-differentiable (the reference)."""

    name = "torch"
    install_hint = ""

    def render(
        self, g: Gaussians, colors: Tensor, camera: Camera, *, background: Tensor | None, filter_2d: float, tile: int,
        chunk: int,
    ) -> RenderOutput:  # fmt: skip
        proj = project_gaussians(g.xyz, g.rotation, g.scaling, g.opacity[:, 0], colors, camera, filter_2d=filter_2d)
        return rasterize(proj, camera.width, camera.height, background=background, tile=tile, chunk=chunk)


class GsplatRenderer(CudaPackage):
    """gsplat's CUDA rasteriser with the same conventions (wxyz quaternions, 2D filter as ``eps2d``)."""

    name = "gsplat"
    module = "gsplat"
    install_hint = "gsplat renders CUDA tensors (use backend='torch' on CPU): pip install gsplat"

    def render(
        self, g: Gaussians, colors: Tensor, camera: Camera, *, background: Tensor | None, filter_2d: float, tile: int,
        chunk: int,
    ) -> RenderOutput:  # fmt: skip
        gsplat = require("gsplat", hint=self.install_hint)
        dev, dtype = g.xyz.device, g.xyz.dtype
        K = torch.tensor([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]], device=dev, dtype=dtype)
        bg = None if background is None else background.to(dev, dtype)[None]
        rgbd, alpha, _ = gsplat.rasterization(
            g.xyz, g.rotation, g.scaling, g.opacity[:, 0], colors, camera.viewmat.to(dev, dtype)[None], K[None],
            camera.width, camera.height, near_plane=0.01, eps2d=filter_2d, backgrounds=bg, render_mode="RGB+ED",
        )  # fmt: skip
        return RenderOutput(rgbd[0, ..., :3], alpha[0, ..., 0], rgbd[0, ..., 3])


render_backends: BackendRegistry[TorchRenderer | GsplatRenderer] = BackendRegistry("render", fallback="torch")
render_backends.register(TorchRenderer(), priority={"cpu": 10, "cuda": 10})
render_backends.register(GsplatRenderer(), priority={"cuda": 20})
