import math

import torch

from ss4d.data.synthetic import SyntheticClip, make_clip
from ss4d.eval import psnr, ssim
from ss4d.eval.baselines import gaussians_on_voxels, gt_voxel_colours
from ss4d.eval.evaluate import Prediction, score
from ss4d.eval.metrics import reported_ssim, temporal_error
from ss4d.render import Camera, orbit_view, render_gaussians


def test_gaussians_on_voxels_sit_on_the_voxels_with_their_colour():
    R = 8
    xyz = torch.tensor([[4, 4, 4], [2, 5, 3]], dtype=torch.int32)
    g = gaussians_on_voxels(xyz, R, torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    torch.testing.assert_close(g.xyz, (xyz.float() + 0.5) / R - 0.5)
    torch.testing.assert_close(g.scaling, torch.full((2, 3), 0.25 / R))
    torch.testing.assert_close(g.opacity, torch.full((2, 1), 0.95))
    cam = Camera(orbit_view(2.0, 0.0, 0.0), 200.0, 200.0, 32.0, 32.0, 64, 64)
    img = render_gaussians(g, cam, background=torch.ones(3)).color  # [H, W, 3]
    p = cam.viewmat[:3, :3] @ g.xyz[0] + cam.viewmat[:3, 3]
    u, v = int(200 * p[0] / p[2] + 32), int(200 * p[1] / p[2] + 32)
    torch.testing.assert_close(img[v, u], 0.95 * torch.tensor([0.9, 0.2, 0.1]) + 0.05, atol=0.03, rtol=0)
    assert float(gaussians_on_voxels(xyz, R).features[:, 0].abs().max()) < 1e-6  # grey = SH DC 0


def test_gt_voxel_colours_recover_a_uniform_colour_and_default_to_grey_where_unseen():
    """Views filled with one colour (alpha 1 everywhere): every voxel seen by a view takes exactly that colour."""
    T, V, S, R = 1, 3, 32, 8
    colour = torch.tensor([200, 40, 90], dtype=torch.uint8)
    views = torch.cat([colour.view(1, 1, 3, 1, 1).expand(T, V, 3, S, S),
                       torch.full((T, V, 1, S, S), 255, dtype=torch.uint8)], 2)  # fmt: skip
    mats = torch.stack([orbit_view(2.0, 2 * math.pi * v / V, 0.2) for v in range(V)])[None]
    coords = torch.tensor([[0, 3, 3, 3], [0, 4, 3, 3], [0, 3, 4, 4]], dtype=torch.int32)
    clip = SyntheticClip(views[:, 0], views, mats, 40.0, coords, torch.zeros(3, 6).half(),
                         torch.zeros(3, dtype=torch.int16), {"resolution": R, "num_frames": T})  # fmt: skip
    got = gt_voxel_colours(clip, 0)
    torch.testing.assert_close(got, (colour.float() / 255).expand(3, 3), atol=1e-4, rtol=0)
    hidden = SyntheticClip(views[:, 0], views * torch.tensor([1, 1, 1, 0], dtype=torch.uint8).view(1, 1, 4, 1, 1),
                           mats, 40.0, coords, clip.features, clip.visible_views, clip.meta)  # fmt: skip
    torch.testing.assert_close(gt_voxel_colours(hidden, 0), torch.full((3, 3), 0.5))


def test_temporal_error_and_flicker():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(5, 3, 8, 8, generator=g)
    still = truth[:1].expand(5, 3, 8, 8)
    assert float(temporal_error(truth, truth)) == 0
    assert abs(float(temporal_error(still, truth)) - float((truth[1:] - truth[:-1]).abs().mean())) < 1e-6
    assert float(temporal_error(truth + 0.3, truth)) < 1e-6  # a constant offset does not change Δ
    assert float(temporal_error(truth.flip(0), truth)) > 0


def test_reported_ssim_is_torchmetrics_and_agrees_with_the_training_ssim():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 40, 40, generator=g), 5, 1, 2)
    b = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    assert abs(float(reported_ssim(a, a)) - 1) < 1e-6
    assert abs(float(reported_ssim(a, b)) - float(ssim(a, b))) < 0.05  # border handling differs
    assert 0 < float(reported_ssim(a[..., :8, :9], b[..., :8, :9])) < 1  # a crop smaller than the window


def test_baselines_on_a_clip():
    clip = make_clip(3, num_frames=3, resolution=8, image_size=24, num_views=2)
    truth = [clip.coords[clip.coords[:, 0] == t, 1:] for t in range(3)]
    empty = score(Prediction([None] * 3), clip)
    white = torch.ones(3, 24, 24)
    gt = clip.views.float() / 255
    composite = gt[:, :, :3] * gt[:, :, 3:] + 1 - gt[:, :, 3:]
    expected = [float(psnr(*[x[..., ys, xs] for x in (white, composite[t, v])]))
                for t in range(3) for v in range(2)
                for ys, xs in [_box(gt[t, v, 3])]]  # fmt: skip
    assert abs(empty["psnr"] - sum(expected) / len(expected)) < 1e-4
    assert empty["flicker"] == 0 and abs(empty["temporal_error"] - empty["truth_flicker"]) < 1e-7
    reversed_ = score(Prediction(None, truth[::-1]), clip)
    assert reversed_["iou_reversed"] == 1 and "psnr" not in reversed_
    grey = score(Prediction([gaussians_on_voxels(x, 8) for x in truth], truth), clip)
    assert grey["iou"] == 1 and grey["psnr"] > empty["psnr"]


def _box(alpha: torch.Tensor, margin: int = 2) -> tuple[slice, slice]:
    ys, xs = torch.nonzero(alpha > 0, as_tuple=True)
    H, W = alpha.shape
    return (slice(max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, H)),
            slice(max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, W)))  # fmt: skip
