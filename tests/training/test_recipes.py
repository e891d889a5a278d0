import torch

from ss4d.data.synthetic import make_clip
from ss4d.models import GaussianDecoder4D, GaussianDecoder4DConfig, SLatEncoder4D, SLatEncoder4DConfig
from ss4d.training import TrainConfig, Trainer
from ss4d.training.data import ClipDataset, occupancy_grid, slat_vae_batch, structure_batch
from ss4d.training.recipes import slat_vae_loss, ssim


def test_ssim_identity_and_noise():
    a = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    assert abs(float(ssim(a, a)) - 1) < 1e-6
    noisy = (a + 0.3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert float(ssim(a, noisy)) < 0.9


def _dataset(tmp_path, n=2):
    for seed in range(n):
        make_clip(seed, num_frames=2, resolution=8, image_size=32, num_views=2).save(tmp_path / f"clip_{seed:06d}")
    return ClipDataset(tmp_path)


def test_batches_from_synthetic_clips(tmp_path):
    data = _dataset(tmp_path)
    g = torch.Generator().manual_seed(0)
    occ = structure_batch(data, g, batch_size=2, frames=2)
    assert occ.shape == (2, 2, 1, 8, 8, 8) and float(occ.sum()) > 0
    assert torch.equal(occupancy_grid(data.clips[0]).sum(), torch.tensor(float(data.clips[0].coords.shape[0])))
    b = slat_vae_batch(data, g, frames=2)
    assert b.voxels.layout.num_frames == 2 and b.views.shape == (2, 4, 32, 32)


def test_slat_vae_render_loss_decreases(tmp_path):
    data = _dataset(tmp_path, n=1)
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({
        "encoder": SLatEncoder4D(SLatEncoder4DConfig(resolution=8, in_channels=6, model_channels=32, latent_channels=4,
                                                     num_blocks=1, num_heads=2, window=2, window_xyz=4)),
        "decoder": GaussianDecoder4D(GaussianDecoder4DConfig(resolution=8, model_channels=32, latent_channels=4,
                                                             num_blocks=1, num_heads=2, window=2, window_xyz=4,
                                                             num_gaussians=4)),
    })  # fmt: skip

    def loss_fn(m, batch, g):
        return slat_vae_loss(m["encoder"], m["decoder"], batch, g)

    fixed = lambda g, step: slat_vae_batch(data, torch.Generator().manual_seed(0), frames=2)  # noqa: E731
    trainer = Trainer(model, fixed, loss_fn, TrainConfig(max_steps=12, lr=3e-3, warmup_steps=1, ckpt_every=100),
                      tmp_path / "run")  # fmt: skip
    history = trainer.train()
    assert history[-1]["l1"] < history[0]["l1"]


def test_slat_vae_loss_adds_lpips_when_given(tmp_path):
    from ss4d.eval.lpips import LPIPS

    data = _dataset(tmp_path, n=1)
    torch.manual_seed(0)
    enc = SLatEncoder4D(SLatEncoder4DConfig(resolution=8, in_channels=6, model_channels=32, latent_channels=4,
                                            num_blocks=1, num_heads=2, window=2, window_xyz=4))  # fmt: skip
    dec = GaussianDecoder4D(GaussianDecoder4DConfig(resolution=8, model_channels=32, latent_channels=4, num_blocks=1,
                                                    num_heads=2, window=2, window_xyz=4, num_gaussians=4))  # fmt: skip
    batch = slat_vae_batch(data, torch.Generator().manual_seed(0), frames=2)
    metric = LPIPS()  # random weights (non-negative per-layer weights, as LPIPS's): enough to see the term work
    for lin in metric.lins:
        lin.weight.data.abs_()
    base, logs = slat_vae_loss(enc, dec, batch, torch.Generator().manual_seed(1))
    with_lpips, logs_l = slat_vae_loss(
        enc, dec, batch, torch.Generator().manual_seed(1), lpips=metric, lpips_weight=0.2
    )
    assert "lpips" not in logs and logs_l["lpips"] > 0
    torch.testing.assert_close(with_lpips, base + 0.2 * logs_l["lpips"] * torch.ones(()), rtol=1e-4, atol=1e-6)
    with_lpips.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in dec.parameters())
