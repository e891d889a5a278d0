"""Training-config validation: the shipped configs pass, every kind of mistake is named before training."""

import copy
import json
from pathlib import Path

import pytest

from ss4d.training import ConfigError, validate_config
from ss4d.training.run import run_training
from tests.training.test_run import MICRO

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").rglob("*.json"))


def test_repo_has_configs():
    assert len(SHIPPED) >= 4


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_shipped_configs_are_valid(path):
    validate_config(json.loads(path.read_text()))


def _micro(**changes):
    config = {**copy.deepcopy(MICRO), "data": "data", "out": "out"}
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return config


def test_micro_config_is_valid():
    validate_config(_micro())


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"epochs": 3}, r"unknown top-level keys \['epochs'\]"),
        ({"out": None}, "needs `out`"),
        ({"stages.slat_flow": None}, r"missing \['slat_flow'\]"),
        ({"stages.decoder_only": {}}, r"unknown stages \['decoder_only'\]"),
        ({"stages.slat_flow.frame_schedul": [[0, 2]]}, r"stages.slat_flow: unknown keys \['frame_schedul'\]"),
        ({"stages.slat_flow.model.num_block": 2}, r"stages.slat_flow.model: .*unknown config keys \['num_block'\]"),
        ({"stages.slat_vae.decoder": None}, "stages.slat_vae needs `decoder`"),
        ({"stages.structure_flow.train.lr": -1.0}, "stages.structure_flow.train: bad training config"),
        ({"stages.structure_flow.train.steps": 5}, "stages.structure_flow.train: .*steps"),
        ({"stages.slat_flow.train.amp": "fp8"}, "stages.slat_flow.train: .*amp"),
        ({"stages.slat_flow.frame_schedule": [[5, 2]]}, "must begin at 0"),
        ({"stages.slat_flow.frame_schedule": [[0, 2], [4]]}, r"\[\[start_step, frames\], ...\]"),
        ({"stages.structure_flow.mask_prob": 1.5}, r"mask_prob must lie in \[0, 1\]"),
        ({"stages.slat_vae.init": {"encoder": "x"}}, "stages.slat_vae.encoder: given both a config and `init`"),
        ({"stages.slat_flow.init": {"decoder": "x"}}, r"stages.slat_flow.init: unknown keys \['decoder'\]"),
        ({"slat_sampler": {"steps": 3}}, "`slat_sampler`: expected an object with keys"),
        ({"stages.condition_encoder": {"train": {"max_steps": 1}}}, "comes from the condition_encoder stage"),
        ({"stages.condition_encoder": {"probe": {"patch": 3}}}, "stages.condition_encoder.probe: .*divisible"),
    ],
)
def test_mistakes_are_named(changes, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(_micro(**changes))


def test_missing_init_folder_is_found_only_when_paths_are_checked(tmp_path):
    config = _micro(**{"stages.slat_flow.model": None, "stages.slat_flow.init": {"model": str(tmp_path / "nope")}})
    validate_config(config)
    with pytest.raises(ConfigError, match=r"stages.slat_flow.init.model: .*nope is not a model folder"):
        validate_config(config, check_paths=True)


def test_training_fails_before_the_first_stage(tmp_path):
    """A mistake in the last stage stops `ss4d train` before the first stage writes anything."""
    config = {**_micro(**{"stages.slat_flow.model.num_heads": 3}), "data": str(tmp_path / "none"),
              "out": str(tmp_path / "run")}  # fmt: skip
    with pytest.raises(ConfigError, match="stages.slat_flow.model"):
        run_training(config, progress=False)
    assert not (tmp_path / "run").exists()
