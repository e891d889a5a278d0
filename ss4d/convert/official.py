"""Convert official SS4D (github Lizb6626/SS4D) and TRELLIS (github microsoft/TRELLIS) checkpoints.

A checkpoint is a model JSON ``{"name": <official class>, "args": {...}}`` next to a ``.safetensors``
state dict (``ckpts/<stem>.json`` + ``ckpts/<stem>.safetensors`` in a pipeline folder).

* :func:`convert_official`: SS4D classes -> ss4d models with the official parity options on
  (``pooling="official"``); every key is mapped, 0 missing / 0 unexpected, or it raises.
* :func:`convert_trellis`: TRELLIS image-large classes -> the 4D models (the paper's starting point): all
  shared keys load 1:1; the SLat flow's CompNet temporal res blocks are new and listed in the result.

Key mapping: names are kept; spconv convolutions ``<m>.conv.weight [out, k..., in]`` become ss4d's
``<m>.weight [K, in, out]`` (:func:`~ss4d.ops.sparse.weight_from_spconv`); the structure flow's stored
``pos_emb`` buffer is checked against ss4d's computed embedding and dropped.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ss4d.errors import CheckpointError, CheckpointMismatchError
from ss4d.models import (
    GaussianDecoder4D,
    GaussianDecoder4DConfig,
    LoadReport,
    ModelConfig,
    ModelMixin,
    SLatEncoder4D,
    SLatEncoder4DConfig,
    SLatFlow4D,
    SLatFlow4DConfig,
    SparseStructureDecoder,
    SparseStructureEncoder,
    SparseStructureVAEConfig,
    StructureFlow4D,
    StructureFlow4DConfig,
    StructureFlow4DInsertTemporal,
    StructureFlow4DInsertTemporalConfig,
)
from ss4d.ops.sparse import weight_from_spconv
from ss4d.representations import SCALING_ACTIVATIONS

__all__ = [
    "OFFICIAL_CLASSES",
    "TRELLIS_CLASSES",
    "ConversionResult",
    "config_from_official",
    "convert_checkpoint",
    "convert_official",
    "convert_trellis",
    "state_from_official",
]

_IGNORED_ARGS = {"use_fp16", "use_checkpoint"}  # dtype and checkpointing are run-time choices in ss4d


@dataclass
class ConversionResult:
    model: ModelMixin
    report: LoadReport
    new_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _take(args: dict[str, Any], name: str, *keys: str) -> dict[str, Any]:
    unknown = set(args) - set(keys) - _IGNORED_ARGS
    if unknown:
        raise CheckpointError(f"{name}: unsupported official arguments {sorted(unknown)}")
    return {k: args[k] for k in keys if k in args}


def _pe(args: dict[str, Any], name: str) -> bool:
    mode = args.get("pe_mode", "ape")
    if mode not in ("ape", "rope_t"):
        raise CheckpointError(f"{name}: pe_mode {mode!r} is not supported "
                              "(the official 'rope' mode crashes in forward)")
    return mode == "rope_t"


def _structure_flow(name: str, args: dict[str, Any], trellis: bool, window: int) -> tuple[type, ModelConfig]:
    a = _take(
        args, name, "resolution", "in_channels", "model_channels", "cond_channels", "out_channels", "num_blocks",
        "num_heads", "num_head_channels", "mlp_ratio", "patch_size", "pe_mode", "rope_base", "window_size",
        "share_mod", "qk_rms_norm", "qk_rms_norm_cross", "expand_self_attn", "insert_temporal",
    )  # fmt: skip
    fields = {
        **{k: a[k] for k in a if k in StructureFlow4DConfig.__dataclass_fields__},
        "window": window if trellis else a.get("window_size"),
        "use_rope": True if trellis else _pe(a, name),
        "temporal": "expand" if trellis or a.get("expand_self_attn", False) else "none",
    }
    if trellis or not a.get("insert_temporal", False):
        return StructureFlow4D, StructureFlow4DConfig.from_dict(fields)
    # the official insert_temporal ablation: an explicitly named parity variant (its own blocks and init)
    if fields["window"] is not None and fields["temporal"] != "expand":
        raise CheckpointError(
            f"{name}: window_size without expand_self_attn raises NotImplementedError in the official code"
        )
    return StructureFlow4DInsertTemporal, StructureFlow4DInsertTemporalConfig.from_dict(fields)


def _slat_flow(name: str, args: dict[str, Any], trellis: bool, window: int) -> tuple[type, ModelConfig]:
    a = _take(
        args, name, "resolution", "in_channels", "model_channels", "cond_channels", "out_channels", "num_blocks",
        "num_heads", "num_head_channels", "mlp_ratio", "patch_size", "num_io_res_blocks", "num_io_res4d_blocks",
        "io_block_channels", "io_block_channels_t", "pe_mode", "rope_base", "use_skip_connection", "share_mod",
        "qk_rms_norm", "qk_rms_norm_cross", "expand_self_attn", "conv_type",
    )  # fmt: skip
    io = list(a.pop("io_block_channels", None) or [])
    if len(io) != 1 or a.get("patch_size", 2) != 2:
        raise CheckpointError(
            f"{name}: ss4d supports one spatial stage (patch_size 2, one io_block_channels), got {io}"
        )
    io_t = list(a.pop("io_block_channels_t", None) or [a["model_channels"]])
    if io_t != [a["model_channels"]]:
        raise CheckpointError(f"{name}: io_block_channels_t must be [model_channels] (official constraint), got {io_t}")
    conv = {"3D_1D": "3d_1d", "3D_4D": "3d_4d", "4D": "4d", "non": "none"}.get(a.pop("conv_type", "3D_1D"))
    if trellis:
        conv = "3d_1d"
    elif conv is None:
        raise CheckpointError(f"{name}: conv_type '3D' is broken in the official code (no temporal downsampling)")
    if not trellis and not a.get("expand_self_attn", False):
        raise CheckpointError(f"{name}: ss4d's SLat flow always attends across frames (expand_self_attn=True)")
    cfg = SLatFlow4DConfig.from_dict(
        {
            **{k: a[k] for k in a if k in SLatFlow4DConfig.__dataclass_fields__},
            "io_block_channels": io[0],
            "num_io_temporal_blocks": a.get("num_io_res4d_blocks", 2),
            "conv_type": conv,
            "use_rope": True if trellis else _pe(a, name),
            "pooling": "official",
        }
    )
    return SLatFlow4D, cfg


def _slat_vae(name: str, args: dict[str, Any], trellis: bool, window: int) -> tuple[type, ModelConfig]:
    common = (
        "resolution", "model_channels", "latent_channels", "num_blocks", "num_heads", "num_head_channels",
        "mlp_ratio", "attn_mode", "window_size", "pe_mode", "qk_rms_norm", "expand_self_attn",
    )  # fmt: skip
    decoder = "Decoder" in name
    a = _take(args, name, *common, *(("representation_config",) if decoder else ("in_channels",)))
    mode = a.pop("attn_mode", "swin")
    if mode not in ("swin", "full"):
        raise CheckpointError(f"{name}: attn_mode {mode!r} is not supported (swin or full)")
    win = a.pop("window_size", 8) if mode == "swin" else None
    temporal = "expand" if trellis or a.pop("expand_self_attn", True) else "none"
    a.pop("expand_self_attn", None)
    use_rope = _pe(a, name) if not trellis else True
    if temporal == "expand" and not use_rope:
        raise CheckpointError(f"{name}: the official 4D VAE asserts pe_mode='rope_t' with expand_self_attn")
    a.pop("pe_mode", None)
    fields = {
        **a,
        "temporal": temporal,
        "window": (window if trellis else win) if temporal == "expand" else None,
        "window_xyz": win,
    }
    if not decoder:
        return SLatEncoder4D, SLatEncoder4DConfig.from_dict(fields)
    rep = fields.pop("representation_config", {}) or {}
    if rep.get("scaling_activation", "softplus") not in SCALING_ACTIVATIONS:
        raise CheckpointError(f"{name}: representation_config.scaling_activation {rep['scaling_activation']!r} is "
                              f"not one of the official options {SCALING_ACTIVATIONS}")  # fmt: skip
    lr = rep.get("lr", {})
    return GaussianDecoder4D, GaussianDecoder4DConfig.from_dict(
        {
            **fields,
            "num_gaussians": rep.get("num_gaussians", 32),
            "voxel_size": rep.get("voxel_size", 1.5),
            "perturb_offset": rep.get("perturb_offset", True),
            "lr_xyz": lr.get("_xyz", 1.0),
            "lr_features_dc": lr.get("_features_dc", 1.0),
            "lr_scaling": lr.get("_scaling", 1.0),
            "lr_rotation": lr.get("_rotation", 0.1),
            "lr_opacity": lr.get("_opacity", 1.0),
            "scaling_bias": rep.get("scaling_bias", 0.004),
            "opacity_bias": rep.get("opacity_bias", 0.1),
            "filter_3d": rep.get("3d_filter_kernel_size", 9e-4),
            "scaling_activation": rep.get("scaling_activation", "softplus"),
        }
    )


def _structure_vae(name: str, args: dict[str, Any], trellis: bool, window: int) -> tuple[type, ModelConfig]:
    decoder = name.endswith("Decoder")
    io = "out_channels" if decoder else "in_channels"
    a = _take(args, name, io, "latent_channels", "num_res_blocks", "channels", "num_res_blocks_middle", "norm_type")
    if a.pop("norm_type", "layer") != "layer":
        raise CheckpointError(f"{name}: only norm_type='layer' is supported")
    channels = tuple(a.pop("channels"))
    cfg = SparseStructureVAEConfig.from_dict(
        {"io_channels": a.pop(io), "channels": tuple(reversed(channels)) if decoder else channels, **a}
    )
    return (SparseStructureDecoder if decoder else SparseStructureEncoder), cfg


Converter = Callable[[str, dict[str, Any], bool, int], tuple[type[ModelMixin], ModelConfig]]
_VAES: dict[str, Converter] = {
    **dict.fromkeys(
        ("SLatEncoder", "ElasticSLatEncoder", "SLatGaussianDecoder", "ElasticSLatGaussianDecoder"), _slat_vae
    ),
    **dict.fromkeys(("SparseStructureEncoder", "SparseStructureDecoder"), _structure_vae),
}
OFFICIAL_CLASSES: dict[str, Converter] = {
    "SparseStructureFlow4DModel": _structure_flow,
    "SLatFlow4DModel": _slat_flow,
    "ElasticSLatFlow4DModel": _slat_flow,
    **_VAES,
}
"""Official SS4D class name -> converter of its ``args`` (one function per class family)."""
TRELLIS_CLASSES: dict[str, Converter] = {
    "SparseStructureFlowModel": _structure_flow,
    "SLatFlowModel": _slat_flow,
    "ElasticSLatFlowModel": _slat_flow,
    **_VAES,
}
"""TRELLIS 3D class name -> converter inflating it to the 4D model."""


def config_from_official(
    checkpoint: dict[str, Any], *, trellis: bool = False, window: int = 8
) -> tuple[type[ModelMixin], ModelConfig]:
    """Map an official ``{"name", "args"}`` checkpoint JSON to an ss4d model class and config.

    ``trellis=True`` reads TRELLIS 3D classes and inflates them to the 4D models (temporal attention in
    the self-attention slot, ``window`` frames for the structure flow and the VAE, as SS4D). Options
    the official code cannot run (``pe_mode='rope'``, ``conv_type='3D'``, ...) raise ``ValueError``.
    """
    name, args = checkpoint["name"], dict(checkpoint["args"])
    table = TRELLIS_CLASSES if trellis else OFFICIAL_CLASSES
    if name not in table:
        raise CheckpointError(f"unknown official model class {name!r}; ss4d converts {sorted(table)}")
    return table[name](name, args, trellis, window)


def state_from_official(model: ModelMixin, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key names / layouts -> ss4d (see module docstring). Raises if ``pos_emb`` disagrees."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "pos_emb" and isinstance(model, StructureFlow4D):
            ours = model.pos_emb().to(value.dtype)
            if value.shape != ours.shape or (
                not value.is_meta and not torch.allclose(value.float(), ours.float(), atol=1e-3)
            ):  # meta tensors (header-only checks): the shape is all there is
                raise CheckpointMismatchError(
                    "pos_emb in the checkpoint differs from the absolute embedding ss4d computes"
                )
            continue
        if (
            key.endswith(".conv.weight")
            and value.ndim >= 5
            and not isinstance(model, (SparseStructureEncoder, SparseStructureDecoder))
        ):
            out[key[: -len(".conv.weight")] + ".weight"] = weight_from_spconv(value.float()).to(value.dtype)
        elif key.endswith(".conv.bias") and not isinstance(model, (SparseStructureEncoder, SparseStructureDecoder)):
            out[key[: -len(".conv.bias")] + ".bias"] = value
        else:
            out[key] = value
    return out


def _load(json_or_dict: str | Path | dict, state_or_path: str | Path | dict) -> tuple[dict, dict]:
    ckpt = json_or_dict if isinstance(json_or_dict, dict) else json.loads(Path(json_or_dict).read_text())
    state = state_or_path if isinstance(state_or_path, dict) else load_file(str(state_or_path))
    return ckpt, state


def convert_official(checkpoint: str | Path | dict, weights: str | Path | dict) -> ConversionResult:
    """Official SS4D checkpoint -> ss4d model (float32, eval), strictly: every key mapped."""
    ckpt, state = _load(checkpoint, weights)
    cls, cfg = config_from_official(ckpt)
    model = cls(cfg)
    report = model.load_checkpoint(
        {k: v.float() for k, v in state_from_official(model, state).items()}, source=ckpt["name"]
    )
    return ConversionResult(model.eval(), report)


def convert_trellis(checkpoint: str | Path | dict, weights: str | Path | dict, *, window: int = 8) -> ConversionResult:
    """TRELLIS image-large checkpoint -> the 4D ss4d model; new (CompNet temporal) keys are listed.

    Anything missing other than the new temporal res blocks, or any unexpected / mismatched key, raises.
    """
    ckpt, state = _load(checkpoint, weights)
    cls, cfg = config_from_official(ckpt, trellis=True, window=window)
    model = cls(cfg)
    mapped = {k: v.float() for k, v in state_from_official(model, state).items()}
    report = model.check_state_dict(mapped)
    new = [k for k in report.missing if k.startswith(("input_blocks_t.", "out_blocks_t."))]
    if report.unexpected or report.mismatched or len(new) != len(report.missing):
        raise CheckpointMismatchError(f"{ckpt['name']} (TRELLIS): {report.describe()}")
    model.load_checkpoint(mapped, strict=False)
    notes = [f"{len(new)} new CompNet temporal keys keep ss4d's initialisation"] if new else []
    return ConversionResult(model.eval(), report, new, notes)


def convert_checkpoint(checkpoint: str | Path, out_dir: str | Path, *, trellis: bool = False,
                       overwrite: bool = False) -> ConversionResult:  # fmt: skip
    """Convert ``<stem>.json`` + ``<stem>.safetensors`` and write an ss4d model folder to ``out_dir`` (an existing
    non-empty one is replaced only with ``overwrite=True``)."""
    checkpoint = Path(checkpoint)
    weights = checkpoint.with_suffix(".safetensors")
    for path in (checkpoint, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (expected <stem>.json next to <stem>.safetensors)")
    result = (convert_trellis if trellis else convert_official)(checkpoint, weights)
    result.model.save_pretrained(out_dir, overwrite=overwrite)
    return result
