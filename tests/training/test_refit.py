import json

import torch

from ss4d.cli import main as cli
from ss4d.data.synthetic import make_clip
from ss4d.models import SLatEncoder4D, SparseStructureEncoder, SparseStructureVAE
from ss4d.training.core import TrainConfig
from ss4d.training.data import ClipDataset
from ss4d.training.refit import refit_slat_encoder, refit_structure_encoder

from ..pipelines.tiny import tiny_pipeline


def test_refit_encoders_train_only_the_encoders_and_feed_the_eval_ceilings(tmp_path):
    """Refitting trains fresh encoders through the pipeline's frozen decoders (bit-identical afterwards), writes
    loadable model folders, and `ss4d eval --structure-encoder --slat-encoder` reports both VAE ceilings."""
    for seed in range(2):
        clip = make_clip(seed, num_frames=2, resolution=8, image_size=24, num_views=2)
        clip.save(tmp_path / "data" / f"clip_{seed:06d}")
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "model")
    decoders = lambda: {**{f"structure.{k}": v for k, v in pipe.structure_decoder.state_dict().items()},  # noqa: E731
                        **{f"slat.{k}": v for k, v in pipe.slat_decoder.state_dict().items()}}
    before = {k: v.clone() for k, v in decoders().items()}
    data = ClipDataset(tmp_path / "data")
    cfg = TrainConfig(max_steps=3, lr=1e-3, warmup_steps=0, ema_rate=0.0, log_every=1, ckpt_every=3)
    ss = refit_structure_encoder(pipe, data, tmp_path / "refit" / "structure", cfg, batch_size=2, frames=2)
    sl = refit_slat_encoder(pipe, data, tmp_path / "refit" / "slat", cfg, frames=2)
    after = decoders()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for folder, cls, trained in ((tmp_path / "refit" / "structure", SparseStructureEncoder, ss),
                                 (tmp_path / "refit" / "slat", SLatEncoder4D, sl)):  # fmt: skip
        loaded = cls.from_pretrained(folder / "final" / "encoder")
        got, want = loaded.state_dict(), trained.state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
        assert len((folder / "log.csv").read_text().splitlines()) == 1 + 3
    vae = SparseStructureVAE.from_pretrained(tmp_path / "refit" / "structure" / "final" / "vae")
    assert all(torch.equal(v, before[f"structure.{k}"]) for k, v in vae.decoder.state_dict().items())
    code = cli(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--steps", "1",
                "--limit", "1", "--out", str(tmp_path / "m.json"),
                "--structure-encoder", str(tmp_path / "refit" / "structure" / "final" / "vae"),  # the whole VAE works
                "--slat-encoder", str(tmp_path / "refit" / "slat" / "final" / "encoder")])  # fmt: skip
    ceilings = json.loads((tmp_path / "m.json").read_text())["ceilings"]
    assert code == 0 and set(ceilings) == {"structure_vae_oracle", "slat_vae_oracle"}
    assert 0 <= ceilings["structure_vae_oracle"]["iou"] <= 1 and "psnr" not in ceilings["structure_vae_oracle"]
    assert ceilings["slat_vae_oracle"]["psnr"] > 0
