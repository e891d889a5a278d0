"""Validation of ``ss4d train`` configs, before any training starts.

A training config is a JSON object: top-level ``data``, ``out`` and optional ``seed``, ``image_size``,
``limit``, ``device``, ``structure_sampler``, ``slat_sampler``; and ``stages``, one entry per stage of
:data:`STAGES` (``condition_encoder`` optional). Each stage gives its networks either as a config dict
(``model``; ``encoder`` / ``decoder``; ``cond_encoder``) or as model folders under ``init``, plus ``train``
(:class:`~ss4d.training.core.TrainConfig` fields) and stage options. :func:`validate_config` checks all of it,
so that a typo in the last stage fails in the first second rather than after hours of the earlier stages.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ss4d.errors import ConfigError
from ss4d.models import (
    GaussianDecoder4D,
    SLatEncoder4D,
    SLatFlow4D,
    SparseStructureVAE,
    StructureFlow4D,
    TinyImageEncoder,
)
from ss4d.pipelines import SamplerParams
from ss4d.pipelines.folder import check_sampler_settings
from ss4d.training.core import TrainConfig
from ss4d.training.probe import StructureProbeConfig

__all__ = ["DEFAULT_IMAGE_SIZE", "OPTIONAL_STAGES", "STAGES", "ConfigError", "validate_config"]

STAGES = ("structure_vae", "slat_vae", "condition_encoder", "structure_flow", "slat_flow")
OPTIONAL_STAGES = ("condition_encoder",)

TOP_LEVEL = {"data", "out", "seed", "image_size", "limit", "device", "stages", "structure_sampler", "slat_sampler"}
SAMPLER_KEYS = {f.name for f in dataclasses.fields(SamplerParams)} | {"rescale_t"}  # rescale_t: the Euler shift
DEFAULT_IMAGE_SIZE = 32

# per stage: its networks (key -> class) and its other options
NETWORKS: dict[str, dict[str, type]] = {
    "structure_vae": {"model": SparseStructureVAE},
    "slat_vae": {"encoder": SLatEncoder4D, "decoder": GaussianDecoder4D},
    "condition_encoder": {"model": TinyImageEncoder},
    "structure_flow": {"model": StructureFlow4D, "cond_encoder": TinyImageEncoder},
    "slat_flow": {"model": SLatFlow4D},
}
OPTIONS: dict[str, set[str]] = {
    "structure_vae": {"batch_size", "frames"},
    "slat_vae": {"frames", "lpips_weight", "lpips_vgg", "lpips_linear"},
    "condition_encoder": {"probe", "batch_size", "mask_prob", "pixel_weight"},
    "structure_flow": {"batch_size", "frame_schedule", "mask_prob"},
    "slat_flow": {"frame_schedule", "mask_prob", "normalization"},
}
# networks whose config may be left out (built from defaults)
DEFAULTED = {("structure_vae", "model"), ("condition_encoder", "model"), ("structure_flow", "cond_encoder")}


def _networks(stage: str, has_condition_stage: bool) -> dict[str, type]:
    nets = dict(NETWORKS[stage])
    if stage == "structure_flow" and has_condition_stage:
        del nets["cond_encoder"]  # the pre-trained, frozen encoder of the condition_encoder stage is used
    return nets


def _check_schedule(where: str, schedule: Any) -> None:
    ok = (isinstance(schedule, list) and schedule
          and all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and v >= 0 for v in p)
                  for p in schedule))  # fmt: skip
    if not ok or any(n < 1 for _, n in schedule):
        raise ConfigError(f"{where}: expected [[start_step, frames], ...] with frames >= 1, got {schedule!r}")
    starts = [s for s, _ in schedule]
    if starts[0] != 0 or starts != sorted(starts):
        raise ConfigError(f"{where}: start steps must begin at 0 and increase, got {starts}")


def _check_stage(stage: str, spec: Any, image_size: int, has_condition_stage: bool, check_paths: bool) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(f"stages.{stage}: expected an object, got {type(spec).__name__}")
    nets = _networks(stage, has_condition_stage)
    unknown = set(spec) - set(nets) - OPTIONS[stage] - {"init", "train"}
    if stage == "structure_flow" and has_condition_stage and "cond_encoder" in unknown | set(spec.get("init", {})):
        raise ConfigError("stages.structure_flow.cond_encoder: the condition encoder comes from the "
                          "condition_encoder stage (pre-trained, frozen); drop one of them")  # fmt: skip
    if unknown:
        allowed = sorted(set(nets) | OPTIONS[stage] | {"init", "train"})
        raise ConfigError(f"stages.{stage}: unknown keys {sorted(unknown)}; allowed: {allowed}")
    init = spec.get("init", {})
    if not isinstance(init, dict):
        raise ConfigError(f"stages.{stage}.init: expected {{network: model_folder}}, got {init!r}")
    if set(init) - set(nets):
        raise ConfigError(f"stages.{stage}.init: unknown keys {sorted(set(init) - set(nets))}; "
                          f"this stage initialises {list(nets)}")  # fmt: skip
    for key, cls in nets.items():
        where = f"stages.{stage}.{key}"
        if key in init:
            if key in spec:
                raise ConfigError(f"{where}: given both a config and `init`; the config comes from the init "
                                  "folder, drop one")  # fmt: skip
            if check_paths and not (Path(init[key]) / "config.json").is_file():
                raise ConfigError(f"stages.{stage}.init.{key}: {init[key]} is not a model folder (no config.json)")
            continue
        if key not in spec and (stage, key) not in DEFAULTED:
            raise ConfigError(f"stages.{stage} needs `{key}` (a model config) or `init.{key}` (a model folder)")
        defaults = {"image_size": image_size} if cls is TinyImageEncoder else {}
        try:
            cls.config_class.from_dict({**defaults, **spec.get(key, {})})
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from e
    try:
        TrainConfig(**spec.get("train", {}))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"stages.{stage}.train: {e}") from e
    if "frame_schedule" in spec:
        _check_schedule(f"stages.{stage}.frame_schedule", spec["frame_schedule"])
    if "probe" in spec:
        try:
            StructureProbeConfig.from_dict(spec["probe"])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"stages.{stage}.probe: {e}") from e
    if "mask_prob" in spec and not 0 <= spec["mask_prob"] <= 1:
        raise ConfigError(f"stages.{stage}.mask_prob must lie in [0, 1], got {spec['mask_prob']}")
    if spec.get("normalization", "data") not in ("data", "init"):
        raise ConfigError(f"stages.{stage}.normalization: 'init' (the statistics of the pipeline holding init.model) "
                          f"or 'data' (computed from the training clips), got {spec['normalization']!r}")  # fmt: skip
    if spec.get("normalization") == "init" and "model" not in spec.get("init", {}):
        raise ConfigError(f"stages.{stage}.normalization 'init' needs init.model (a pipeline's slat_flow folder)")


def validate_config(config: dict[str, Any], *, check_paths: bool = False) -> None:
    """Raise :class:`ConfigError` naming the first problem of ``config``; ``check_paths`` also requires every
    ``init`` folder to exist (done by ``ss4d train`` when it starts)."""
    if not isinstance(config, dict):
        raise ConfigError(f"a training config is a JSON object, got {type(config).__name__}")
    unknown = set(config) - TOP_LEVEL
    if unknown:
        raise ConfigError(f"unknown top-level keys {sorted(unknown)}; allowed: {sorted(TOP_LEVEL)}")
    for key in ("data", "out", "stages"):
        if key not in config:
            raise ConfigError(f"the config needs `{key}`")
    stages = config["stages"]
    if not isinstance(stages, dict):
        raise ConfigError("`stages` must be an object {stage: spec}")
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ConfigError(f"unknown stages {sorted(unknown)}; known: {list(STAGES)}")
    missing = [s for s in STAGES if s not in stages and s not in OPTIONAL_STAGES]
    if missing:
        raise ConfigError(f"the config needs the stages {[s for s in STAGES if s not in OPTIONAL_STAGES]}; "
                          f"missing {missing}")  # fmt: skip
    for key in ("structure_sampler", "slat_sampler"):
        if key in config and (not isinstance(config[key], dict) or set(config[key]) - SAMPLER_KEYS):
            raise ConfigError(f"`{key}`: expected an object with keys from {sorted(SAMPLER_KEYS)}, "
                              f"got {config[key]!r}")  # fmt: skip
        check_sampler_settings(config.get(key, {}), error=ConfigError,
                               label=lambda name, key=key: f"`{key}.{name}`")  # fmt: skip
    for key, lo in (("image_size", 8), ("seed", 0), ("limit", 1)):
        v = config.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
            raise ConfigError(f"`{key}`: expected an integer >= {lo}, got {v!r}")
    for key in ("data", "out"):
        if not isinstance(config[key], str) or not config[key]:
            raise ConfigError(f"`{key}`: expected a folder path (a string), got {config[key]!r}")
    image_size = int(config.get("image_size", DEFAULT_IMAGE_SIZE))
    for stage in STAGES:
        if stage in stages:
            _check_stage(stage, stages[stage], image_size, "condition_encoder" in stages, check_paths)
    _check_agreement(stages, image_size, check_paths)


def _network_config(stages: dict, stage: str, key: str, image_size: int, check_paths: bool):
    """The config object of network ``key`` of ``stage`` (from its spec or its init folder); None if unknown."""
    spec = stages.get(stage)
    if spec is None:
        return None
    cls = NETWORKS[stage][key]
    init = spec.get("init", {})
    if key in init:
        if not check_paths:
            return None
        path = Path(init[key]) / "config.json"
        try:
            raw = json.loads(path.read_text())
            return cls.config_class.from_dict(raw)
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"stages.{stage}.init.{key}: {path} is not a readable model config ({e})") from e
    if key not in spec and (stage, key) not in DEFAULTED:
        return None
    defaults = {"image_size": image_size} if cls is TinyImageEncoder else {}
    return cls.config_class.from_dict({**defaults, **spec.get(key, {})})


def _check_agreement(stages: dict, image_size: int, check_paths: bool) -> None:
    """Channels and resolutions that must agree between networks of different stages."""
    get = lambda stage, key: _network_config(stages, stage, key, image_size, check_paths)  # noqa: E731
    vae, enc, dec = get("structure_vae", "model"), get("slat_vae", "encoder"), get("slat_vae", "decoder")
    sflow, lflow = get("structure_flow", "model"), get("slat_flow", "model")
    cond = get("condition_encoder", "model") if "condition_encoder" in stages else get("structure_flow", "cond_encoder")
    cond_key = ("stages.condition_encoder.model.channels" if "condition_encoder" in stages
                else "stages.structure_flow.cond_encoder.channels")  # fmt: skip
    pairs = []
    if vae and sflow:
        pairs += [("stages.structure_vae.model.latent_channels", vae.latent_channels,
                   "stages.structure_flow.model.in_channels", sflow.in_channels),
                  ("stages.structure_vae.model.latent_channels", vae.latent_channels,
                   "stages.structure_flow.model.out_channels", sflow.out_channels)]  # fmt: skip
    for name, net in (("slat_vae.decoder", dec), ("slat_flow.model", lflow)):
        if enc and net:
            pairs.append(("stages.slat_vae.encoder.latent_channels", enc.latent_channels,
                          f"stages.{name}.{'latent' if net is dec else 'in'}_channels",
                          net.latent_channels if net is dec else net.in_channels))  # fmt: skip
            pairs.append(("stages.slat_vae.encoder.resolution", enc.resolution, f"stages.{name}.resolution",
                          net.resolution))  # fmt: skip
    if lflow and dec:
        pairs.append(("stages.slat_flow.model.out_channels", lflow.out_channels,
                      "stages.slat_vae.decoder.latent_channels", dec.latent_channels))  # fmt: skip
    if vae and sflow and lflow:
        pairs.append(("stages.structure_flow.model.resolution x structure_vae downsampling",
                      sflow.resolution * vae.downsample_factor, "stages.slat_flow.model.resolution",
                      lflow.resolution))  # fmt: skip
    for name, net in (("structure_flow", sflow), ("slat_flow", lflow)):
        if cond and net:
            pairs.append((cond_key, cond.channels, f"stages.{name}.model.cond_channels", net.cond_channels))
    for a, va, b, vb in pairs:
        if va != vb:
            raise ConfigError(f"{b} = {vb} disagrees with {a} = {va}; the networks must agree (set both the same)")
