"""Configs and persistence shared by every ss4d network (diffusers-style, safetensors only).

A model folder holds ``config.json`` (the frozen config dataclass plus ``_class_name``) and
``model.safetensors``. A folder is written whole or not at all (:func:`ss4d.utils.atomic_folder`); loading
checks the safetensors header against the file size, refuses NaN / inf weights, is strict by default and
reports missing, unexpected and shape-mismatched keys by name. No pickle is read or written.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from ss4d import __version__
from ss4d.errors import CheckpointError, CheckpointMismatchError
from ss4d.layers.registry import BlockFactory, attention_layers, mlp_layers, norm_layers, temporal_layers
from ss4d.ops.modes import TemporalMode, check_choice
from ss4d.utils.atomic import atomic_file, atomic_folder
from ss4d.utils.configs import config_kwargs
from ss4d.utils.untrusted import load_safetensors, read_json_object

__all__ = [
    "BlockLayersConfig",
    "LoadReport",
    "ModelConfig",
    "ModelMixin",
    "TransformerConfig",
    "atomic_write",
]

C = TypeVar("C", bound="ModelConfig")
M = TypeVar("M", bound="ModelMixin")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Base of the frozen, JSON-serialisable model configs. Subclasses validate in :meth:`validate`."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when the config is inconsistent."""

    def check_divisible(self, name: str, by: str) -> None:
        """For :meth:`validate`: raise ``ValueError`` naming both unless field ``name`` is a multiple of ``by``
        (a field or property, e.g. ``"image_size"`` of ``"patch_size"``, ``"model_channels"`` of ``"heads"``)."""
        value, divisor = getattr(self, name), getattr(self, by)
        if value % divisor:
            raise ValueError(f"{name} {value} must be divisible by {by} {divisor}")

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Build from a dict; unknown keys raise (``_class_name`` / ``_ss4d_version`` are ignored)."""
        return cls(**config_kwargs(cls, d))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self)}

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class BlockLayersConfig(ModelConfig):
    """The sub-blocks a transformer model builds, by registered name (see :mod:`ss4d.layers.registry`).

    A swapped block is a config value, so it round-trips through ``save_pretrained`` / ``from_pretrained``
    (register the class before loading). ``attn_layer=None`` keeps each block's own attention.
    """

    temporal_layer: str = "temporal"
    attn_layer: str | None = None
    mlp_layer: str = "feedforward"
    norm_layer: str = "layernorm32"

    def validate(self) -> None:
        self.layer_factories()  # unknown names fail here, listing the registered ones

    def layer_factories(self) -> dict[str, BlockFactory]:
        """The registered classes, as keyword arguments of the blocks."""
        factories = {
            "temporal_layer": temporal_layers.get(self.temporal_layer),
            "mlp_layer": mlp_layers.get(self.mlp_layer),
            "norm_layer": norm_layers.get(self.norm_layer),
        }
        if self.attn_layer is not None:
            factories["attn_layer"] = attention_layers.get(self.attn_layer)
        return factories


@dataclass(frozen=True, kw_only=True)
class TransformerConfig(BlockLayersConfig):
    """The trunk of ss4d's transformers (the flows' DiT, the SLat VAE): ``num_blocks`` blocks of width
    ``model_channels`` with ``num_heads`` heads (default ``model_channels // num_head_channels``), MLP ratio,
    how time enters the blocks (``temporal``, one of ``temporal_modes``), the temporal ``window`` (frames;
    ``None``: the whole clip), the RoPE base and the q/k RMS norm of the self-attention. Each model sets its own
    defaults for the width, the depth and ``qk_rms_norm``."""

    temporal_modes: ClassVar[Any] = TemporalMode  # the `temporal` values a model accepts (a Literal alias)

    model_channels: int
    num_blocks: int
    qk_rms_norm: bool
    num_heads: int | None = None
    num_head_channels: int = 64
    mlp_ratio: float = 4.0
    temporal: TemporalMode = "expand"
    window: int | None = 8
    rope_base: float = 10000.0

    @property
    def heads(self) -> int:
        return self.num_heads or self.model_channels // self.num_head_channels

    def block_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every block of the trunk takes from these fields, with the registered sub-blocks
        (:meth:`layer_factories`)."""
        return {"num_heads": self.heads, "mlp_ratio": self.mlp_ratio, "temporal": self.temporal, "window": self.window,
                "rope_base": self.rope_base, "qk_rms_norm": self.qk_rms_norm, **self.layer_factories()}  # fmt: skip

    def validate(self) -> None:
        super().validate()
        self.check_divisible("model_channels", "heads")
        check_choice(self.temporal, self.temporal_modes, "temporal")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 or None, got {self.window}")


@dataclass
class LoadReport:
    """What did not match when loading a state dict."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        parts = []
        for name, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                shown = ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")
                parts.append(f"{len(items)} {name} key(s): {shown}")
        if self.mismatched:
            shown = ", ".join(f"{k} (checkpoint {a}, model {b})" for k, a, b in self.mismatched[:limit])
            parts.append(f"{len(self.mismatched)} shape mismatch(es): {shown}")
        return "; ".join(parts) or "all keys match"


atomic_write = atomic_file  # the name other modules import: a whole file or none, normal permissions


class ModelMixin(nn.Module):
    """Save/load, parameter counting and dtype helpers. Subclasses set ``config_class`` and take ``config``."""

    config_class: ClassVar[type[ModelConfig]]

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # --- persistence --------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, *, dtype: torch.dtype | None = None, overwrite: bool = False) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``, whole or not at all; returns it.

        ``dtype`` (e.g. ``torch.float16``) stores the *parameters* in that type (buffers keep theirs) to halve
        the file; ``from_pretrained`` casts them back into the model's own dtype on load. An existing non-empty
        ``folder`` is replaced only with ``overwrite=True`` (:func:`ss4d.utils.atomic_folder`).
        """
        with atomic_folder(folder, overwrite=overwrite) as tmp:
            self._write_pretrained(tmp, dtype=dtype)
        return Path(folder)

    def _write_pretrained(self, folder: Path, *, dtype: torch.dtype | None = None) -> None:
        config = {"_class_name": type(self).__name__, "_ss4d_version": __version__, **self.config.to_dict()}
        params = {name for name, _ in self.named_parameters()}
        state = {
            k: (v.to(dtype) if dtype is not None and k in params else v).detach().contiguous().cpu()
            for k, v in self.state_dict().items()
        }
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def from_pretrained(
        cls: type[M],
        folder: str | Path,
        *,
        strict: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> M:
        """Build from ``folder/config.json`` and load ``folder/model.safetensors``.

        Raises:
            FileNotFoundError: a file is missing (the message names it).
            CheckpointError: unreadable / invalid config.json, a config of another class or with unknown keys,
                a damaged safetensors file, NaN / inf weights (:class:`~ss4d.errors.NonFiniteError`).
            CheckpointMismatchError: with ``strict``, any missing / unexpected / mismatched key.
        """
        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} not found: expected a folder written by save_pretrained()")
        config_path = folder / "config.json"
        raw = read_json_object(config_path, fix="re-save the model folder")
        if raw.get("_class_name", cls.__name__) != cls.__name__:
            raise CheckpointError(f"{config_path} holds a {raw['_class_name']}, not a {cls.__name__}; "
                                  "point to the right component folder")  # fmt: skip
        try:
            config = cls.config_class.from_dict(raw)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{config_path}: {e}") from e
        model = cls(config)
        model.load_checkpoint(load_safetensors(folder / "model.safetensors"), strict=strict, source=folder)
        return model.to(device=device, dtype=dtype).eval()

    def load_checkpoint(
        self, state: dict[str, torch.Tensor], *, strict: bool = True, source: object = ""
    ) -> "LoadReport":
        """Load ``state``; with ``strict`` any missing / unexpected / mismatched key raises before anything is
        copied. Without it, matching keys are loaded and the report is returned."""
        report = self.check_state_dict(state)
        if strict and report:
            raise CheckpointMismatchError(f"{source}: {report.describe()}")
        bad = {k for k, _, _ in report.mismatched}
        self.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
        return report

    def check_state_dict(self, state: dict[str, torch.Tensor]) -> LoadReport:
        own = self.state_dict()
        mismatched = [
            (k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if k in own and v.shape != own[k].shape
        ]
        return LoadReport(sorted(set(own) - set(state)), sorted(set(state) - set(own)), mismatched)

    # --- utilities ----------------------------------------------------------------------------------
    def num_parameters(self, *, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
