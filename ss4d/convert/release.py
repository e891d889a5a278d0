"""Read an official SS4D release folder (github Lizb6626/SS4D, hub ``lizb6626/SS4D``) into ss4d models.

The official folder is TRELLIS-style (docs/official_release.md)::

    pipeline.json   {"name": "TrellisVideoTo4DPipeline", "args": {
                        "models": {"sparse_structure_decoder": "ckpts/<stem>", "sparse_structure_flow_model": ...,
                                   "slat_flow_model": ..., "slat_decoder_gs": ..., maybe "slat_decoder_mesh"/"_rf"},
                        "sparse_structure_sampler": {"name", "args": {"sigma_min"},
                                                     "params": {"steps", "cfg_strength", "cfg_interval", "rescale_t"}},
                        "slat_sampler": {...}, "slat_normalization": {"mean": [...], "std": [...]},
                        "image_cond_model": "dinov2_vitl14_reg"}}
    ckpts/<stem>.json + ckpts/<stem>.safetensors   one {"name", "args"} model each

:func:`read_release` parses and validates ``pipeline.json`` (cheap); :func:`check_release` validates every
checkpoint against its JSON *without loading weights* (header shapes against a meta-device model), so a
bad release fails before any heavy work with one line naming the file and the fix; :func:`load_release`
converts the models in memory (0 missing / 0 unexpected keys, official pooling).

Decoders ss4d does not implement (mesh, radiance field) are skipped with a one-line notice. A model
path that is not inside the folder (``owner/repo/ckpts/<stem>``, TRELLIS's way to share a checkpoint
between repositories) is reported in :attr:`OfficialRelease.external` for the caller to resolve.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ss4d.convert.official import config_from_official, convert_official, state_from_official
from ss4d.errors import CheckpointMismatchError, ReleaseFormatError
from ss4d.models import ModelMixin

__all__ = [
    "COMPONENT_ROLES",
    "OfficialRelease",
    "check_release",
    "is_official_release",
    "load_release",
    "read_release",
    "sampler_params_from_official",
]

COMPONENT_ROLES = {
    "sparse_structure_decoder": "structure_decoder",
    "sparse_structure_flow_model": "structure_flow",
    "slat_flow_model": "slat_flow",
    "slat_decoder_gs": "slat_decoder",
}
"""Official ``args.models`` key -> ss4d pipeline component."""

SKIPPED_ROLES = {"slat_decoder_mesh": "mesh decoder", "slat_decoder_rf": "radiance-field decoder"}

EXPECTED_CLASSES = {
    "structure_decoder": ("SparseStructureDecoder",),
    "structure_flow": ("SparseStructureFlow4DModel",),
    "slat_flow": ("SLatFlow4DModel", "ElasticSLatFlow4DModel"),
    "slat_decoder": ("SLatGaussianDecoder", "ElasticSLatGaussianDecoder"),
}

# official sampler class -> (uses CFG, uses the guidance interval); official code defaults below
_SAMPLERS = {
    "FlowEulerSampler": (False, False),
    "FlowEulerCfgSampler": (True, False),
    "FlowEulerGuidanceIntervalSampler": (True, True),
}
_SAMPLER_DEFAULTS = {"steps": 50, "rescale_t": 1.0, "cfg_strength": 3.0, "cfg_interval": (0.0, 1.0)}

_FIX = "re-download the release (`hf download lizb6626/SS4D`) or fix the file"


@dataclass
class OfficialRelease:
    """``pipeline.json`` of an official release, in ss4d's terms (no weights loaded)."""

    folder: Path
    checkpoints: dict[str, str]  # ss4d component -> checkpoint stem ("ckpts/<stem>", relative to folder or hub)
    structure_sampler: dict[str, Any]  # ss4d SamplerParams fields
    slat_sampler: dict[str, Any]
    sigma_min: float
    slat_mean: list[float] | None
    slat_std: list[float] | None
    image_cond_model: str
    notes: list[str] = field(default_factory=list)
    stem_paths: dict[str, Path] = field(default_factory=dict)  # resolved elsewhere (external checkpoints)

    @property
    def external(self) -> dict[str, str]:
        """Components whose checkpoint stem is not a file of this folder (e.g. ``owner/repo/ckpts/x``)."""
        return {
            k: v
            for k, v in self.checkpoints.items()
            if k not in self.stem_paths and not (self.folder / f"{v}.json").is_file()
        }

    def files(self, component: str) -> tuple[Path, Path]:
        stem = self.stem_paths.get(component) or self.folder / self.checkpoints[component]
        return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".safetensors")

    def needed_files(self) -> list[str]:
        """Paths (relative to the folder) the pipeline needs: what a hub download fetches."""
        return ["pipeline.json"] + [f"{v}{ext}" for v in self.checkpoints.values() for ext in (".json", ".safetensors")]


def is_official_release(folder: str | Path) -> bool:
    return (Path(folder) / "pipeline.json").is_file() and not (Path(folder) / "model_index.json").is_file()


def sampler_params_from_official(sampler: Any, where: str) -> tuple[dict[str, Any], float]:
    """Official ``{"name", "args": {"sigma_min"}, "params": {...}}`` -> (ss4d ``SamplerParams`` fields, sigma_min).

    ``FlowEulerSampler`` means no guidance (cfg 0), ``FlowEulerCfgSampler`` guidance at every step
    (interval [0, 1]); missing params take the official code defaults (50 steps, rescale_t 1, cfg 3).
    """
    if not isinstance(sampler, dict) or sampler.get("name") not in _SAMPLERS:
        name = sampler.get("name") if isinstance(sampler, dict) else sampler
        raise ReleaseFormatError(f"{where}: unknown sampler {name!r}; ss4d reads {sorted(_SAMPLERS)}")
    cfg, interval = _SAMPLERS[sampler["name"]]
    params = dict(sampler.get("params") or {})
    unknown = set(params) - set(_SAMPLER_DEFAULTS)
    if unknown:
        raise ReleaseFormatError(
            f"{where}: unknown sampler params {sorted(unknown)}; known {sorted(_SAMPLER_DEFAULTS)}"
        )
    p = {**_SAMPLER_DEFAULTS, **params}
    lo, hi = (float(v) for v in p["cfg_interval"]) if interval else (0.0, 1.0)
    out = {
        "num_steps": int(p["steps"]),
        "cfg_strength": float(p["cfg_strength"]) if cfg else 0.0,
        "cfg_interval": (lo, hi),
        "rescale_t": float(p["rescale_t"]),
    }
    return out, float((sampler.get("args") or {}).get("sigma_min", 1e-5))


def read_release(folder: str | Path) -> OfficialRelease:
    """Parse and validate ``folder/pipeline.json``.

    Raises:
        ReleaseFormatError: not valid JSON, a required key missing, an unknown model role or sampler.
    """
    folder = Path(folder)
    path = folder / "pipeline.json"
    if not path.is_file():
        raise ReleaseFormatError(f"{path} not found: not an official SS4D release folder")
    try:
        args = json.loads(path.read_text())["args"]
        models = dict(args["models"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ReleaseFormatError(f"{path}: expected {{'name', 'args': {{'models': ...}}}} JSON ({e!r}); {_FIX}") from e
    notes, checkpoints = [], {}
    for role, stem in models.items():
        if role in SKIPPED_ROLES:
            notes.append(f"skipping {role} ({SKIPPED_ROLES[role]}): ss4d decodes Gaussians only")
        elif role in COMPONENT_ROLES:
            checkpoints[COMPONENT_ROLES[role]] = str(stem)
        else:
            raise ReleaseFormatError(f"{path}: unknown model role {role!r}; known {sorted(COMPONENT_ROLES)}")
    missing = sorted(r for r, c in COMPONENT_ROLES.items() if c not in checkpoints)
    if missing:
        raise ReleaseFormatError(f"{path}: args.models lacks {missing}; {_FIX}")
    for key in ("sparse_structure_sampler", "slat_sampler"):
        if key not in args:
            raise ReleaseFormatError(f"{path}: args.{key} missing; {_FIX}")
    ss, sigma_ss = sampler_params_from_official(args["sparse_structure_sampler"], f"{path} sparse_structure_sampler")
    slat, sigma_slat = sampler_params_from_official(args["slat_sampler"], f"{path} slat_sampler")
    if sigma_ss != sigma_slat:
        notes.append(
            f"sigma_min {sigma_ss} (structure) vs {sigma_slat} (SLat): ss4d uses {sigma_ss} (no effect on samples)"
        )
    norm = args.get("slat_normalization") or {}
    return OfficialRelease(
        folder=folder,
        checkpoints=checkpoints,
        structure_sampler=ss,
        slat_sampler=slat,
        sigma_min=sigma_ss,
        slat_mean=norm.get("mean"),
        slat_std=norm.get("std"),
        image_cond_model=str(args.get("image_cond_model", "dinov2_vitl14_reg")),
        notes=notes,
    )


def _read_checkpoint_json(path: Path, component: str) -> dict:
    try:
        ckpt = json.loads(path.read_text())
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("args"), dict):
            raise TypeError("no 'args' object")
    except (json.JSONDecodeError, TypeError) as e:
        raise ReleaseFormatError(f"{path}: expected {{'name', 'args'}} JSON ({e}); {_FIX}") from e
    if ckpt.get("name") not in EXPECTED_CLASSES[component]:
        raise ReleaseFormatError(
            f"{path}: model name {ckpt.get('name')!r} cannot be the {component}; expected one of "
            f"{list(EXPECTED_CLASSES[component])}; {_FIX}"
        )
    return ckpt


def _config(ckpt: dict, path: Path) -> tuple[type[ModelMixin], Any]:
    try:
        return config_from_official(ckpt)
    except ValueError as e:
        raise ReleaseFormatError(f"{path}: {e}") from e


def check_release(release: OfficialRelease) -> None:
    """Every checkpoint file exists, its JSON names a model ss4d converts, and the safetensors header
    has exactly the keys and shapes that model needs. Reads headers only (a meta-device model).

    Raises:
        ReleaseFormatError: naming the file and the fix.
    """
    for component in COMPONENT_ROLES.values():
        js, st = release.files(component)
        for path in (js, st):
            if not path.is_file():
                raise ReleaseFormatError(
                    f"{path} not found (pipeline.json names {release.checkpoints[component]!r} for the {component}); "
                    f"{_FIX}"
                )
        ckpt = _read_checkpoint_json(js, component)
        cls, cfg = _config(ckpt, js)
        with torch.device("meta"):
            model = cls(cfg)
        try:
            with safe_open(str(st), framework="pt") as f:
                state = {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}  # noqa: SIM118
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise ReleaseFormatError(f"{st}: unreadable safetensors ({e}); {_FIX}") from e
        report = model.check_state_dict(state_from_official(model, state))
        if report:
            raise ReleaseFormatError(
                f"{st} does not fit {js.name} ({ckpt['name']}): {report.describe(limit=3)}; {_FIX}"
            )


def load_release(release: OfficialRelease) -> dict[str, ModelMixin]:
    """Convert the four models (float32, eval) after :func:`check_release`; keys map 1:1 or it raises."""
    check_release(release)
    models = {}
    for component in COMPONENT_ROLES.values():
        js, st = release.files(component)
        try:
            models[component] = convert_official(js, st).model
        except CheckpointMismatchError as e:
            raise ReleaseFormatError(f"{st}: {e}; {_FIX}") from e
    return models
