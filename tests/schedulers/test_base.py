import json

import pytest
import torch

from ss4d.schedulers import (
    SCHEDULERS,
    FlowMatchAB2Scheduler,
    FlowMatchEulerScheduler,
    FlowMatchHeunScheduler,
    FlowMatchScheduler,
    FlowMatchSchedulerConfig,
    load_scheduler,
    register_scheduler,
)

ALL = [FlowMatchEulerScheduler, FlowMatchHeunScheduler, FlowMatchAB2Scheduler]


@pytest.mark.parametrize("cls", ALL)
def test_config_round_trips_through_a_folder(cls, tmp_path):
    s = cls(sigma_min=1e-4, shift=2.5)
    s.save_pretrained(tmp_path / "s")
    raw = json.loads((tmp_path / "s" / "scheduler_config.json").read_text())
    assert raw == {"_class_name": cls.__name__, "sigma_min": 1e-4, "shift": 2.5}
    loaded = load_scheduler(tmp_path / "s")
    assert type(loaded) is cls and loaded.config == s.config
    assert type(cls.from_pretrained(tmp_path / "s")) is cls
    other = FlowMatchHeunScheduler.from_config(s.config)  # swap the solver, keep the settings
    assert other.config == s.config and SCHEDULERS[cls.__name__] is cls


def test_bad_configs_and_folders(tmp_path):
    with pytest.raises(ValueError, match="shift"):
        FlowMatchEulerScheduler(shift=0.0)
    assert isinstance(FlowMatchEulerScheduler.from_config({"shift": 3}).config.shift, float)  # JSON's 3.0 -> 3
    with pytest.raises(ValueError, match="unknown config keys"):
        FlowMatchEulerScheduler.from_config({"sigma_min": 1e-5, "rescale": 3})
    with pytest.raises(FileNotFoundError, match="scheduler_config.json"):
        load_scheduler(tmp_path)
    (tmp_path / "scheduler_config.json").write_text(json.dumps({"_class_name": "os.system"}))
    with pytest.raises(ValueError, match="not registered"):
        load_scheduler(tmp_path)
    FlowMatchEulerScheduler().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a FlowMatchHeunScheduler"):
        FlowMatchHeunScheduler.from_pretrained(tmp_path)


def test_registration_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):
        register_scheduler(type("FlowMatchEulerScheduler", (FlowMatchEulerScheduler,), {}))
    assert register_scheduler(FlowMatchEulerScheduler) is FlowMatchEulerScheduler  # idempotent


@pytest.mark.parametrize("cls", ALL)
def test_step_checks_the_loop(cls):
    s = cls()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        s.step(torch.zeros(2), 1.0, torch.zeros(2))
    with pytest.raises(ValueError, match="num_inference_steps"):
        s.set_timesteps(0)
    s.set_timesteps(2)
    with pytest.raises(ValueError, match="expects timestep"):
        s.step(torch.zeros(2), 0.25, torch.zeros(2))
    for t in s.timesteps:
        s.step(torch.zeros(2), t, torch.zeros(2))
    with pytest.raises(RuntimeError, match="done"):
        s.step(torch.zeros(2), 0.0, torch.zeros(2))
    assert s.timesteps[0] == 1.0 and s.sigmas[-1] == 0.0 and len(s.timesteps) == (3 if cls.order == 2 else 2)


def test_grid_shift_matches_trellis_rescale_t():
    s = FlowMatchEulerScheduler(shift=3.0)
    s.set_timesteps(4)
    expected = [3 * t / (1 + 2 * t) for t in (1.0, 0.75, 0.5, 0.25, 0.0)]
    assert s.sigmas.tolist() == pytest.approx(expected, abs=1e-15)


def test_training_targets():
    s = FlowMatchEulerScheduler()
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    xt = s.add_noise(x0, eps, t)
    torch.testing.assert_close(xt[0], x0[0] + 1e-5 * eps[0])
    torch.testing.assert_close(xt[3], eps[3])
    torch.testing.assert_close(s.scale_noise(x0, 0.25, eps), s.add_noise(x0, eps, torch.full((4,), 0.25)))
    dt = 1e-3  # the velocity target is d x_t / d t
    torch.testing.assert_close((s.add_noise(x0, eps, t + dt) - xt) / dt, s.velocity_target(x0, eps).expand_as(xt),
                               rtol=1e-3, atol=1e-3)  # fmt: skip
    # the x_0 estimate inverts the path when given the exact velocity
    xt = s.add_noise(x0, eps, torch.full((4,), 0.3))
    torch.testing.assert_close(s.pred_original_sample(xt, 0.3, s.velocity_target(x0, eps)), x0)


def test_is_abstract():
    with pytest.raises(TypeError):
        FlowMatchScheduler()
    assert FlowMatchSchedulerConfig().shift == 1.0
