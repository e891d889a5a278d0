"""Sampler settings of a model_index.json and of a training config are checked by one function."""

import math

import pytest

from ss4d.errors import CheckpointError, ConfigError
from ss4d.pipelines.folder import check_sampler_settings


@pytest.mark.parametrize(
    "settings,key",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": True}, "num_steps"),
        ({"num_steps": 2.0}, "num_steps"),
        ({"cfg_strength": -1}, "cfg_strength"),
        ({"cfg_strength": True}, "cfg_strength"),
        ({"rescale_t": math.inf}, "rescale_t"),
        ({"cfg_interval": [0.9, 0.1]}, "cfg_interval"),
        ({"cfg_interval": [0.0, math.nan]}, "cfg_interval"),
        ({"cfg_interval": [0.0, True]}, "cfg_interval"),
        ({"cfg_interval": [0.5]}, "cfg_interval"),
    ],
)
@pytest.mark.parametrize("error", [CheckpointError, ConfigError])
def test_bad_settings_raise_the_callers_error_naming_the_key(settings, key, error):
    with pytest.raises(error, match=f"^<{key}>: expected"):
        check_sampler_settings(settings, error=error, label=lambda name: f"<{name}>")


def test_good_settings_pass():
    check_sampler_settings({}, error=ValueError, label=str)
    check_sampler_settings({"num_steps": 3, "cfg_strength": 0, "rescale_t": 3.0, "cfg_interval": [0.5, 1]},
                           error=ValueError, label=str)  # fmt: skip
