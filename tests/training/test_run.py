"""`ss4d train` end to end on a micro config: every stage trains, resumes, and yields a loadable pipeline."""

import json
import shutil

import pytest
import torch

from ss4d.cli import main
from ss4d.data.synthetic import make_clip
from ss4d.models import TinyImageEncoder
from ss4d.pipelines import SS4DPipeline
from ss4d.training.run import frames_at, run_training

MICRO = {
    "image_size": 16,
    "stages": {
        "structure_vae": {"model": {"channels": [4, 8], "num_res_blocks": 1, "num_res_blocks_middle": 1},
                          "train": {"max_steps": 2, "warmup_steps": 1, "ckpt_every": 1}, "frames": 2},
        "slat_vae": {"encoder": {"resolution": 8, "in_channels": 6, "model_channels": 16, "num_blocks": 1,
                                 "num_heads": 1, "window": 2, "window_xyz": 4},
                     "decoder": {"resolution": 8, "model_channels": 16, "num_blocks": 1, "num_heads": 1,
                                 "window": 2, "window_xyz": 4, "num_gaussians": 2},
                     "train": {"max_steps": 2, "warmup_steps": 1}, "frames": 2},
        "structure_flow": {"model": {"resolution": 4, "model_channels": 16, "cond_channels": 16, "num_blocks": 1,
                                     "num_heads": 1, "patch_size": 1, "window": 2},
                           "cond_encoder": {"patch_size": 8, "channels": 16, "num_layers": 1, "num_heads": 1},
                           "train": {"max_steps": 2, "warmup_steps": 1}, "frame_schedule": [[0, 2], [1, 4]]},
        "slat_flow": {"model": {"resolution": 8, "model_channels": 16, "cond_channels": 16, "num_blocks": 1,
                                "num_heads": 1, "io_block_channels": 8},
                      "train": {"max_steps": 2, "warmup_steps": 1}, "frame_schedule": [[0, 2]]},
    },
    "structure_sampler": {"num_steps": 2, "cfg_strength": 1.0},
    "slat_sampler": {"num_steps": 2, "cfg_strength": 1.0},
}  # fmt: skip


def test_frame_schedule():
    assert [frames_at([[0, 8], [100, 16], [200, 32]], s) for s in (0, 99, 100, 250)] == [8, 8, 16, 32]


def test_train_all_stages_and_generate(tmp_path):
    for seed in range(2):
        make_clip(seed, num_frames=4, resolution=8, image_size=24, num_views=2).save(
            tmp_path / "data" / f"clip_{seed:06d}"
        )
    config = {**MICRO, "data": str(tmp_path / "data"), "out": str(tmp_path / "run")}
    folder = run_training(config, progress=False)
    for stage in ("structure_vae", "slat_vae", "structure_flow", "slat_flow"):
        assert (tmp_path / "run" / stage / "log.csv").is_file(), stage
    pipe = SS4DPipeline.from_pretrained(folder)
    clip = torch.zeros(3, 4, 24, 24)
    clip[:, :, 6:18, 6:18] = 1.0
    coords = torch.tensor([[t, x, 4, 4] for t in range(3) for x in (3, 4, 5)], dtype=torch.int32)
    out = pipe(clip, structure=coords, progress=False)  # the trained SLat flow + decoder on given voxels
    assert out.num_frames == 3 and all(len(g) == 3 * 2 for g in out.gaussians)
    # a second run resumes every stage at its last step instead of training again
    again = run_training(config, progress=False)
    assert again == folder

    # fine-tuning: every stage initialised from model folders (here the first run's; converted TRELLIS/SS4D
    # folders from `ss4d convert` work the same way); with 0 steps the pipeline is exactly the source's
    final = tmp_path / "run"
    init = {"structure_vae": {"model": final / "structure_vae/final/model"},
            "slat_vae": {"encoder": final / "slat_vae/final/encoder", "decoder": final / "slat_vae/final/decoder"},
            "structure_flow": {"model": final / "structure_flow/final/model",
                               "cond_encoder": final / "structure_flow/final/cond_encoder"},
            "slat_flow": {"model": final / "slat_flow/final/model"}}  # fmt: skip
    stages = {
        name: {**{k: v for k, v in spec.items() if k not in init[name]},
               "init": {k: str(v) for k, v in init[name].items()}, "train": {"max_steps": 0}}
        for name, spec in MICRO["stages"].items()
    }  # fmt: skip
    tuned = run_training({**config, "stages": stages, "out": str(tmp_path / "tuned")}, progress=False)
    a, b = SS4DPipeline.from_pretrained(folder), SS4DPipeline.from_pretrained(tuned)
    for name in ("condition_encoder", "structure_decoder", "structure_flow", "slat_flow", "slat_decoder"):
        for (k, x), y in zip(
            getattr(a, name).state_dict().items(), getattr(b, name).state_dict().values(), strict=True
        ):
            assert torch.equal(x, y), (name, k)
    both = {**stages, "slat_flow": {**stages["slat_flow"], "model": MICRO["stages"]["slat_flow"]["model"]}}
    with pytest.raises(ValueError, match="both a config and `init`"):
        run_training({**config, "stages": both, "out": str(tmp_path / "x")}, progress=False)
    typo = {**stages, "structure_vae": {**stages["structure_vae"], "init": {"vae": "somewhere"}}}
    with pytest.raises(ValueError, match="unknown keys"):
        run_training({**config, "stages": typo, "out": str(tmp_path / "y")}, progress=False)

    # a SLat flow taken from a pipeline folder keeps that pipeline's latent normalization (the space it was
    # trained in) unless `normalization: "data"` asks for the training clips' statistics
    source = tmp_path / "source"
    shutil.copytree(folder, source)
    index = json.loads((source / "model_index.json").read_text())
    shifted = {"mean": [m + 1.0 for m in index["slat_normalization"]["mean"]],
               "std": [2.0 * s for s in index["slat_normalization"]["std"]]}  # fmt: skip
    (source / "model_index.json").write_text(json.dumps({**index, "slat_normalization": shifted}))
    from_pipe = {**stages, "slat_flow": {**stages["slat_flow"], "init": {"model": str(source / "slat_flow")}}}
    kept = SS4DPipeline.from_pretrained(run_training({**config, "stages": from_pipe, "out": str(tmp_path / "k")},
                                                     progress=False))  # fmt: skip
    assert torch.allclose(torch.as_tensor(kept.slat_mean), torch.tensor(shifted["mean"]))
    assert torch.allclose(torch.as_tensor(kept.slat_std), torch.tensor(shifted["std"]))
    data = {**from_pipe, "slat_flow": {**from_pipe["slat_flow"], "normalization": "data"}}
    recomputed = SS4DPipeline.from_pretrained(run_training({**config, "stages": data, "out": str(tmp_path / "d")},
                                                           progress=False))  # fmt: skip
    assert torch.allclose(torch.as_tensor(recomputed.slat_mean), torch.as_tensor(a.slat_mean))
    loose = {**stages, "slat_flow": {**stages["slat_flow"], "normalization": "init"}}  # init outside a pipeline
    with pytest.raises(ValueError, match="not a component of a pipeline folder"):
        run_training({**config, "stages": loose, "out": str(tmp_path / "l")}, progress=False)
    assert not (tmp_path / "l").exists()  # refused before any stage ran
    with pytest.raises(ValueError, match="normalization: 'init'"):
        run_training({**config, "stages": {**stages, "slat_flow": {**stages["slat_flow"], "normalization": "x"}},
                      "out": str(tmp_path / "z")}, progress=False)  # fmt: skip


def test_train_cli_and_config_errors(tmp_path):
    assert main(["train", str(tmp_path / "none.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": str(tmp_path), "out": str(tmp_path), "stages": {"structure_vae": {}}}))
    assert main(["train", str(bad), "-q"]) == 2
    with pytest.raises(ValueError, match="unknown stages"):
        run_training({"data": "x", "out": "y", "stages": {"vae": {}}})


def test_pretrained_frozen_condition_encoder_stage(tmp_path):
    """With a `condition_encoder` stage the tiny encoder is pre-trained on the probe task, then frozen: the
    structure flow trains alone, and the pipeline carries exactly the pre-trained encoder."""
    for seed in range(2):
        make_clip(seed, num_frames=4, resolution=8, image_size=24, num_views=2).save(
            tmp_path / "data" / f"clip_{seed:06d}"
        )
    stages = dict(MICRO["stages"])
    encoder = stages["structure_flow"]["cond_encoder"]
    stages["structure_flow"] = {k: v for k, v in stages["structure_flow"].items() if k != "cond_encoder"}
    stages["condition_encoder"] = {"model": encoder, "probe": {"num_layers": 1, "num_heads": 1, "patch": 2},
                                   "train": {"max_steps": 3, "warmup_steps": 1}, "batch_size": 3}  # fmt: skip
    config = {**MICRO, "stages": stages, "data": str(tmp_path / "data"), "out": str(tmp_path / "run")}
    folder = run_training(config, progress=False)
    log = (tmp_path / "run" / "condition_encoder" / "log.csv").read_text()
    assert "bce" in log and "iou" in log
    assert not (tmp_path / "run" / "structure_flow" / "final" / "cond_encoder").exists()
    pretrained = TinyImageEncoder.from_pretrained(tmp_path / "run" / "condition_encoder" / "final" / "model")
    pipe = SS4DPipeline.from_pretrained(folder)
    for (k, a), b in zip(pretrained.state_dict().items(), pipe.condition_encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b), k

    both = {**stages, "structure_flow": {**stages["structure_flow"], "cond_encoder": encoder}}
    with pytest.raises(ValueError, match="condition_encoder stage"):
        run_training({**config, "stages": both, "out": str(tmp_path / "x")}, progress=False)
