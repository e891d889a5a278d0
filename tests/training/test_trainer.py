import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from ss4d.models import SparseStructureVAE, SparseStructureVAEConfig, StructureFlow4D, StructureFlow4DConfig
from ss4d.training import TrainConfig, Trainer, cfm_loss, dice_loss, structure_vae_loss

VAE = SparseStructureVAEConfig(channels=(4, 8), num_res_blocks=1, num_res_blocks_middle=1, latent_channels=4)


def spheres(generator: torch.Generator, step: int, batch: int = 2, frames: int = 2, res: int = 8) -> torch.Tensor:
    """Occupancy of random spheres, [B, T, 1, R, R, R]: a pure function of the generator."""
    axis = torch.arange(res).float() + 0.5
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    centre = torch.rand(batch, frames, 1, 1, 1, 3, generator=generator) * res * 0.5 + res * 0.25
    radius = torch.rand(batch, frames, 1, 1, 1, generator=generator) * res * 0.2 + res * 0.15
    return ((grid - centre).norm(dim=-1) < radius).float().unsqueeze(2)


def _vae_trainer(tmp_path, **cfg):
    torch.manual_seed(0)
    model = SparseStructureVAE(VAE)
    config = TrainConfig(max_steps=6, lr=2e-3, warmup_steps=2, log_every=1, ckpt_every=3, **cfg)
    return Trainer(model, spheres, structure_vae_loss, config, tmp_path)


def test_resume_is_bit_exact(tmp_path):
    straight = _vae_trainer(tmp_path / "a")
    straight.train()
    first = _vae_trainer(tmp_path / "b")
    first.train(until=3)
    resumed = _vae_trainer(tmp_path / "b")
    assert resumed.resume() and resumed.step == 3
    resumed.train()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for name in straight.ema:
        assert torch.equal(straight.ema[name], resumed.ema[name]), name
    assert (tmp_path / "b" / "log.csv").is_file() and resumed.plot().is_file()


def test_structure_vae_learns(tmp_path):
    trainer = Trainer(SparseStructureVAE(VAE), lambda g, s: spheres(torch.Generator().manual_seed(0), 0),
                      structure_vae_loss, TrainConfig(max_steps=40, lr=3e-3, warmup_steps=1, ckpt_every=100),
                      tmp_path)  # fmt: skip
    history = trainer.train()
    assert history[-1]["dice"] < 0.8 * history[0]["dice"]


def test_cfm_loss_trains_the_structure_flow(tmp_path):
    torch.manual_seed(0)
    flow = StructureFlow4D(StructureFlow4DConfig(resolution=4, in_channels=4, out_channels=4, model_channels=32,
                                                 cond_channels=8, num_blocks=1, num_heads=2, window=2))  # fmt: skip
    x0 = torch.randn(2, 3, 4, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    cond = torch.randn(2, 3, 5, 8, generator=torch.Generator().manual_seed(2))

    def loss_fn(model, batch, g):
        return cfm_loss(lambda x, t: model(x, t, cond), batch, g, batch_size=2)

    trainer = Trainer(flow, lambda g, s: x0, loss_fn, TrainConfig(max_steps=30, lr=2e-3, warmup_steps=1,
                                                                  ckpt_every=100), tmp_path)  # fmt: skip
    history = trainer.train()
    assert all(math.isfinite(h["loss"]) for h in history)
    assert sum(h["loss"] for h in history[-5:]) < sum(h["loss"] for h in history[:5])


def test_dice_loss_bounds():
    target = torch.zeros(1, 8)
    target[0, :4] = 1
    assert float(dice_loss(torch.full((1, 8), -30.0), target)) > 0.7
    assert float(dice_loss(torch.where(target > 0, 30.0, -30.0), target)) < 1e-3
    with pytest.raises(ValueError, match="bad training config"):
        TrainConfig(max_steps=-1)


def test_bf16_autocast_trains_with_fp32_master_weights(tmp_path):
    trainer = _vae_trainer(tmp_path, amp="bf16")
    history = trainer.train()
    assert all(math.isfinite(h["loss"]) for h in history)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    full = _vae_trainer(tmp_path / "fp32")
    full.train()
    # autocast really ran in bf16: the trajectories differ, but stay close
    a = torch.cat([p.flatten() for p in trainer.model.parameters()])
    b = torch.cat([p.flatten() for p in full.model.parameters()])
    assert not torch.equal(a, b)
    assert (a - b).abs().max() < 0.05


def test_fp16_loss_scaling_state_resumes_bit_exactly(tmp_path):
    straight = _vae_trainer(tmp_path / "a", amp="fp16")
    straight.train()
    first = _vae_trainer(tmp_path / "b", amp="fp16")
    first.train(until=3)
    resumed = _vae_trainer(tmp_path / "b", amp="fp16")
    assert resumed.resume()
    assert resumed.scaler.get_scale() == first.scaler.get_scale()
    resumed.train()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    trainer = Trainer(SparseStructureVAE(VAE), spheres, structure_vae_loss,
                      TrainConfig(max_steps=2, lr=1e-3, warmup_steps=1, ckpt_every=100), out)  # fmt: skip
    trainer.train()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        save_file({"params": torch.stack(gathered)}, os.path.join(out, "params.safetensors"))
    dist.barrier()  # both ranks tear gloo down together (a rank leaving early can abort its peer's gloo threads)
    dist.destroy_process_group()


def test_ddp_two_cpu_processes_stay_in_sync(tmp_path):
    port = 29500 + os.getpid() % 1000
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    params = load_file(str(tmp_path / "params.safetensors"))["params"]
    assert torch.equal(params[0], params[1])
