import math

import pytest
import torch

from ss4d.render import (
    Camera,
    look_at,
    orbit_cameras,
    project_gaussians,
    rasterize,
    render_backends,
    render_gaussians,
)
from ss4d.representations import Gaussians


def _scene(n=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 0.6
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.08 + 0.02
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    return means, quats, scales, opac, colors


def _camera(w=20, h=14, dtype=torch.float64):
    view = look_at(torch.tensor([1.6, -0.9, 0.7], dtype=dtype), torch.zeros(3, dtype=dtype))
    return Camera(view, 18.0, 17.0, w / 2 + 0.3, h / 2 - 0.2, w, h)


def _single(mean, scale, cam):
    d = torch.float64
    quat, scales = torch.tensor([[1.0, 0, 0, 0]], dtype=d), torch.full((1, 3), scale, dtype=d)
    return project_gaussians(mean, quat, scales, torch.ones(1, dtype=d), torch.ones(1, 3, dtype=d), cam)


def _brute_force(proj, w, h, bg):
    """Per pixel, every Gaussian in depth order: the obviously-correct compositing."""
    order = torch.argsort(proj.depth)
    img = torch.zeros(h, w, 3, dtype=proj.mean2d.dtype)
    for y in range(h):
        for x in range(w):
            T, c = 1.0, torch.zeros(3, dtype=img.dtype)
            for i in order.tolist():
                if proj.radius[i] <= 0:
                    continue
                dx, dy = x + 0.5 - proj.mean2d[i, 0], y + 0.5 - proj.mean2d[i, 1]
                a, b, cc = proj.conic[i]
                power = -0.5 * (a * dx * dx + cc * dy * dy) - b * dx * dy
                alpha = min(0.99, float(proj.opacity[i] * torch.exp(power)))
                if power > 0 or alpha < 1 / 255:
                    continue
                c = c + T * alpha * proj.color[i]
                T = T * (1 - alpha)
            img[y, x] = c + T * bg
    return img


@pytest.mark.parametrize("tile,chunk", [(16, 128), (4, 3), (8, 1)])
def test_matches_brute_force(tile, chunk):
    cam = _camera()
    proj = project_gaussians(*_scene(), cam)
    bg = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64)
    out = rasterize(proj, cam.width, cam.height, background=bg, tile=tile, chunk=chunk)
    torch.testing.assert_close(out.color, _brute_force(proj, cam.width, cam.height, bg), rtol=1e-10, atol=1e-10)
    assert out.color.shape == (14, 20, 3) and float(out.alpha.max()) > 0.3


def test_projection_of_a_point_follows_the_pinhole_model():
    cam = _camera()
    p = torch.tensor([[0.1, -0.05, 0.2]], dtype=torch.float64)
    proj = _single(p, 0.01, cam)
    pc = cam.viewmat[:3, :3] @ p[0] + cam.viewmat[:3, 3]
    expected = torch.stack([cam.fx * pc[0] / pc[2] + cam.cx, cam.fy * pc[1] / pc[2] + cam.cy])
    torch.testing.assert_close(proj.mean2d[0], expected)
    # isotropic Gaussian: 2D covariance ~ (f * s / z)^2 + filter on the axis
    assert float(1 / proj.conic[0, 0]) == pytest.approx((cam.fx * 0.01 / float(pc[2])) ** 2 + 0.1, rel=0.05)


def test_gradients_match_finite_differences():
    cam = _camera(w=10, h=8)
    means, quats, scales, opac, colors = _scene(n=4, seed=3)
    bg = torch.zeros(3, dtype=torch.float64)

    def f(means, scales, opac, colors):
        proj = project_gaussians(means, quats, scales, opac, colors, cam)
        return rasterize(proj, cam.width, cam.height, background=bg, tile=4, chunk=2).color

    inputs = tuple(t.clone().requires_grad_(True) for t in (means, scales, opac, colors))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_behind_camera_and_empty_scenes_render_background():
    cam = _camera()
    means = torch.tensor([[5.0, -3.0, 2.0]], dtype=torch.float64)  # behind the camera
    proj = _single(means, 0.1, cam)
    out = rasterize(proj, cam.width, cam.height, background=torch.ones(3, dtype=torch.float64))
    assert torch.equal(out.color, torch.ones(14, 20, 3, dtype=torch.float64)) and float(out.alpha.max()) == 0


def test_render_gaussians_and_orbit_cameras():
    g = torch.Generator().manual_seed(0)
    n = 200
    xyz, dc = torch.rand(n, 3, generator=g) * 0.5 + 0.25, torch.randn(n, 1, 3, generator=g)
    gs = Gaussians(xyz, dc, torch.full((n, 3), 3.0), torch.zeros(n, 4), torch.full((n, 1), 2.0))
    cams = orbit_cameras(4, size=32)
    assert len(cams) == 4
    for cam in cams:
        assert float(cam.position.norm()) == pytest.approx(2.0, rel=1e-5)
        out = render_gaussians(gs, cam)
        assert out.color.shape == (32, 32, 3) and float(out.alpha.mean()) > 0.05
        assert 1.2 < float(out.depth[out.alpha > 0.5].mean()) < 2.8
    assert math.isclose(float(cams[0].normalized_intrinsics()[0, 2]), 0.5)


def test_unknown_backend_and_gsplat_on_cpu():
    gs = Gaussians(torch.rand(4, 3), torch.zeros(4, 1, 3), torch.zeros(4, 3), torch.zeros(4, 4), torch.zeros(4, 1))
    cam = orbit_cameras(1, size=16)[0]
    with pytest.raises(ValueError, match="backend"):
        render_gaussians(gs, cam, backend="opengl")
    with pytest.raises(Exception, match="gsplat|CUDA"):
        render_gaussians(gs, cam, backend="gsplat")


def test_render_auto_reads_the_registry_priority():
    assert render_backends.priority("cuda") == ["gsplat", "torch"] and render_backends.priority("cpu") == ["torch"]
    assert render_backends.resolve("auto", "cpu").name == "torch"


@pytest.mark.cuda
@pytest.mark.parametrize("backend", render_backends.names())  # every registered renderer
def test_every_renderer_matches_torch_on_cuda(backend):
    if backend not in render_backends.available("cuda"):
        pytest.skip(f"{backend}: {render_backends.get(backend).unavailable_reason(torch.device('cuda'))}")
    g = torch.Generator().manual_seed(0)
    n = 300
    xyz, dc = torch.rand(n, 3, generator=g) * 0.5 + 0.25, torch.randn(n, 1, 3, generator=g)
    gs = Gaussians(xyz, dc, torch.full((n, 3), 3.0), torch.randn(n, 4, generator=g) * 0.2, torch.full((n, 1), 2.0))
    cam = orbit_cameras(1, size=64)[0]
    ref = render_gaussians(gs, cam, backend="torch").color
    got = render_gaussians(gs.to("cuda"), cam, backend=backend).color.cpu()
    assert float((got - ref).abs().mean()) < 0.02
