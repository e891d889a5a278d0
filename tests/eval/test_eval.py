import json

import pytest
import torch

from ss4d.cli import main
from ss4d.data.synthetic import make_clip
from ss4d.eval import bbox_crop, flicker, psnr, ssim, voxel_iou
from ss4d.models import SLatEncoder4D, SLatEncoder4DConfig

from ..pipelines.tiny import tiny_pipeline


def test_metrics_on_known_cases():
    a = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float(psnr(a, a)) > 90 and abs(float(ssim(a, a)) - 1) < 1e-6
    assert abs(float(psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1))) - 20.0) < 1e-4
    assert float(flicker(torch.stack([a[0], a[0]]))) == 0 and float(flicker(a)) > 0
    alpha = torch.zeros(10, 10)
    alpha[3:5, 4:8] = 1
    (crop,) = bbox_crop(alpha, torch.rand(3, 10, 10), margin=0)
    assert crop.shape == (3, 2, 4)
    a, b = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 0, 0]]), torch.tensor([[1, 0, 0], [2, 0, 0]])
    assert voxel_iou(a, b) == 1 / 3 and voxel_iou(a, a) == 1 and voxel_iou(a[:0], b[:0]) == 1
    with pytest.raises(ValueError, match="voxel sets"):
        voxel_iou(a, b[:, :2])


def test_eval_cli_on_synthetic_clips(tmp_path, weight_files):
    for seed in range(2):
        make_clip(seed, num_frames=2, resolution=8, image_size=24, num_views=2).save(
            tmp_path / "data" / f"clip_{seed:06d}"
        )
    tiny_pipeline().save_pretrained(tmp_path / "model")
    vgg, lin, *_ = weight_files
    code = main(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--steps", "1",
                 "--out", str(tmp_path / "m.json"), "--lpips-vgg", str(vgg), "--lpips-linear", str(lin)])  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["clips"] == 2 and 0 < result["psnr"] < 100 and -1 <= result["ssim"] <= 1 and result["flicker"] >= 0
    assert result["lpips"] > 0 and all("lpips" in row for row in result["per_clip"])
    assert 0 <= result["iou"] <= 1 and 0 <= result["iou_reversed"] <= 1 and result["temporal_error"] >= 0
    base = result["baselines"]
    assert set(base) == {"empty", "grey_gt_occupancy", "coloured_gt_occupancy", "gt_time_reversed", "gt_static"}
    assert base["empty"]["flicker"] == 0 and base["gt_time_reversed"]["iou_reversed"] == 1
    assert all(len(b["per_clip"]) == 2 and "lpips" in b for k, b in base.items() if k.endswith("occupancy"))
    assert result["ceilings"] == {} and "--slat-encoder" in result["slat_vae_oracle_missing"]
    code = main(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--steps", "1",
                 "--limit", "1", "--out", str(tmp_path / "n.json"),
                 "--lpips-vgg", str(tmp_path / "no.pth")])  # fmt: skip
    result = json.loads((tmp_path / "n.json").read_text())
    assert code == 0 and "lpips" not in result and "VGG16" in result["lpips_missing"]
    assert main(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "nothing")]) == 2


def test_eval_ceilings_with_a_slat_encoder(tmp_path):
    """``--slat-encoder`` adds the SLat VAE oracle (GT voxels -> encoder -> the pipeline's decoder) and
    ``--stages`` the model's SLat stage on the true occupancy; both render on the same views as the model."""
    make_clip(0, num_frames=2, resolution=8, image_size=24, num_views=2).save(tmp_path / "data" / "clip_000000")
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "model")
    d = pipe.slat_decoder.config
    SLatEncoder4D(SLatEncoder4DConfig(in_channels=6, resolution=d.resolution, model_channels=d.model_channels,
                                      latent_channels=d.latent_channels, num_blocks=1, num_heads=d.num_heads,
                                      window=4, window_xyz=4)).save_pretrained(tmp_path / "enc")  # fmt: skip
    code = main(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--steps", "1",
                 "--out", str(tmp_path / "m.json"), "--slat-encoder", str(tmp_path / "enc"), "--stages"])  # fmt: skip
    result = json.loads((tmp_path / "m.json").read_text())
    assert code == 0 and set(result["ceilings"]) == {"slat_vae_oracle", "model_on_gt_structure"}
    for row in result["ceilings"].values():
        assert 0 < row["psnr"] < 100 and "iou" not in row and row["temporal_error"] >= 0
