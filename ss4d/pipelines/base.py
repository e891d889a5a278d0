"""Persistence shared by every ss4d pipeline: the component registry (an allowlist), ``model_index.json``,
``from_pretrained`` / ``save_pretrained`` (docs/design.md, "Schedulers and pipelines").

A pipeline folder holds ``model_index.json`` (``components``: name -> registered class name, plus the
pipeline's own settings) and one subfolder per component. Only registered classes load: a model class through
:func:`register_component`, a scheduler through :func:`ss4d.schedulers.register_scheduler`; never an arbitrary
import path.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from ss4d import __version__
from ss4d.errors import CheckpointError, SS4DError
from ss4d.models.base import atomic_write
from ss4d.pipelines.folder import read_index
from ss4d.pipelines.hub import HubOptions, PipelineSource, resolve_pipeline_source
from ss4d.schedulers import SCHEDULERS, FlowMatchScheduler
from ss4d.utils.atomic import atomic_folder
from ss4d.utils.device import check_device

__all__ = ["COMPONENT_CLASSES", "ComponentIO", "Pipeline", "component_io", "register_component"]

P = TypeVar("P", bound="Pipeline")
T = TypeVar("T", bound=type)
INDEX_NAME = "model_index.json"


@dataclass(frozen=True)
class ComponentIO:
    """How a registered component class is read from and written to its subfolder."""

    cls: type
    load: Callable[[Path], Any]  # folder -> component
    save: Callable[[Any, Path, torch.dtype | None], None]  # (component, folder, parameter dtype or None)


COMPONENT_CLASSES: dict[str, type] = {}
"""Registered component classes by name: the only classes a ``model_index.json`` may name (besides the
registered schedulers, :data:`ss4d.schedulers.SCHEDULERS`)."""
_IO: dict[str, ComponentIO] = {}


def _save_pretrained(module: Any, folder: Path, dtype: torch.dtype | None) -> None:
    module.save_pretrained(folder, dtype=dtype)


def register_component(
    cls: T | None = None,
    *,
    load: Callable[[Path], Any] | None = None,
    save: Callable[[Any, Path, torch.dtype | None], None] | None = None,
) -> T | Callable[[T], T]:
    """Allow a class as a pipeline component (usable as a decorator, with or without arguments).

    By default the class loads with ``cls.from_pretrained(folder)`` and saves with
    ``component.save_pretrained(folder, dtype=dtype)``; ``load`` / ``save`` replace them for a class with
    another on-disk format (e.g. a transformers model).

    Raises:
        ValueError: another class is registered under the same name.
    """

    def add(c: T) -> T:
        known = COMPONENT_CLASSES.get(c.__name__)
        if known is not None and known is not c:
            raise ValueError(f"a component class named {c.__name__!r} is already registered ({known.__module__})")
        COMPONENT_CLASSES[c.__name__] = c
        _IO[c.__name__] = ComponentIO(c, load or c.from_pretrained, save or _save_pretrained)
        return c

    return add(cls) if cls is not None else add


def _save_scheduler(scheduler: FlowMatchScheduler, folder: Path, dtype: torch.dtype | None) -> None:
    scheduler.save_pretrained(folder)


def component_io(class_name: str) -> ComponentIO | None:
    """The registered reader/writer of ``class_name`` (a component or a scheduler class), or None."""
    if class_name in COMPONENT_CLASSES:  # the allowlist; _IO holds how each entry is read and written
        return _IO[class_name]
    if class_name in SCHEDULERS:
        cls = SCHEDULERS[class_name]
        return ComponentIO(cls, cls.from_pretrained, _save_scheduler)
    return None


def _allowed() -> list[str]:
    return sorted({*COMPONENT_CLASSES, *SCHEDULERS})


class Pipeline:
    """Base of ss4d pipelines: named components plus settings, saved as a folder and loaded back.

    A subclass lists its components in ``component_names`` (those in ``optional_components`` may be missing
    from older folders: :meth:`_default_component` builds them), takes them as keyword arguments of
    ``__init__``, and maps its other settings to and from ``model_index.json`` with :meth:`_index_settings` and
    :meth:`_settings_from_index`.
    """

    component_names: ClassVar[tuple[str, ...]] = ()
    optional_components: ClassVar[tuple[str, ...]] = ()

    @property
    def components(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.component_names}

    # --- hooks for subclasses -----------------------------------------------------------------------
    def _index_settings(self) -> dict[str, Any]:
        """The pipeline's own entries of ``model_index.json`` (JSON values)."""
        return {}

    @classmethod
    def _settings_from_index(cls, index: dict[str, Any], path: Path) -> dict[str, Any]:
        """``__init__`` keyword arguments (besides the components) from a ``model_index.json``."""
        return {}

    @classmethod
    def _default_component(cls, name: str, index: dict[str, Any]) -> Any:
        """An optional component that an older folder lacks."""
        raise NotImplementedError(f"{cls.__name__} has no default for the optional component {name!r}")

    # --- loading ------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls: type[P],
        path: str | Path,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        torch_dtype: torch.dtype | None = None,
        cache_dir: str | Path | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **load_kwargs: Any,
    ) -> P:
        """Load a pipeline from a local folder or a hub id (``huggingface_hub``; ``cache_dir`` / ``revision`` /
        ``local_files_only`` / ``HF_HUB_OFFLINE`` mean what they mean in diffusers, see
        :mod:`ss4d.pipelines.hub`). ``torch_dtype`` (or ``dtype``) casts every network, e.g. ``torch.bfloat16``;
        ``load_kwargs`` go to the subclass's :meth:`_from_source`.

        Raises:
            FileNotFoundError: no such folder / no model_index.json / missing component folder.
            ModelNotCachedError: a hub id offline with nothing cached (names the download command).
            ValueError: a component class not on the allowlist, or an unreadable index.
        """
        check_device(device)
        options = HubOptions(cache_dir, revision, local_files_only)
        pipe = cls._from_source(resolve_pipeline_source(path, options), options, **load_kwargs)
        return pipe.to(device, torch_dtype or dtype)

    @classmethod
    def _from_source(cls: type[P], source: PipelineSource, options: HubOptions, **load_kwargs: Any) -> P:
        """The pipeline of a resolved source; the base reads ss4d folders only (a subclass may read more)."""
        if load_kwargs:
            raise TypeError(f"{cls.__name__}.from_pretrained got unexpected arguments {sorted(load_kwargs)}")
        if source.kind != "ss4d":
            raise ValueError(f"{source.folder}: a {source.kind} folder, which {cls.__name__} cannot load")
        return cls._from_folder(source.folder)

    @classmethod
    def _from_folder(cls: type[P], folder: Path) -> P:
        """Read an ss4d pipeline folder (``model_index.json`` + one subfolder per component), every check of
        :func:`~ss4d.pipelines.folder.read_index` first (allowlist, confinement, types, finite statistics)."""
        checked = read_index(folder, cls.component_names, set(_allowed()), optional=cls.optional_components)
        loaded = {}
        for name in cls.component_names:
            if name in checked.components:
                class_name, sub = checked.components[name]
                loaded[name] = component_io(class_name).load(sub)
            else:
                loaded[name] = cls._default_component(name, checked.raw)
        try:
            return cls(**loaded, **cls._settings_from_index(checked.raw, checked.path))
        except SS4DError as e:
            raise type(e)(f"{checked.path}: {e}") from e
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{checked.path}: {e}") from e

    # --- saving -------------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path, *, dtype: torch.dtype | None = None, overwrite: bool = False) -> Path:
        """Write the pipeline folder, whole or not at all (:func:`ss4d.utils.atomic.atomic_folder`: a temporary
        sibling renamed into place; an existing non-empty folder is replaced only with ``overwrite=True``);
        ``dtype`` stores the parameters in that type (e.g. ``torch.float16`` for a half-size folder).

        Raises:
            ValueError: a component's class is not registered (nothing is written then).
            OutputExistsError / OutputLockedError / OutputPathError: see :func:`~ss4d.utils.atomic.atomic_folder`.
        """
        with atomic_folder(path, overwrite=overwrite) as tmp:
            self._write_components(tmp, dtype=dtype)
        return Path(path)

    def _write_components(self, folder: Path, *, dtype: torch.dtype | None = None) -> None:
        """Every file of the folder: each component in its subfolder, then ``model_index.json`` (atomically,
        last, so a folder with an index is complete). All writing of a pipeline folder happens here."""
        ios = {}
        for name, component in self.components.items():
            io = component_io(type(component).__name__)
            if io is None or io.cls is not type(component):
                raise ValueError(f"component {name} of class {type(component).__name__} cannot be saved: not a "
                                 f"registered class ({_allowed()}); see ss4d.pipelines.register_component")  # fmt: skip
            ios[name] = io
        for name, io in ios.items():
            io.save(getattr(self, name), folder / name, dtype)
        index = {
            "_class_name": type(self).__name__,
            "_ss4d_version": __version__,
            "components": {name: type(c).__name__ for name, c in self.components.items()},
            **self._index_settings(),
        }
        atomic_write(folder / INDEX_NAME, lambda p: p.write_text(json.dumps(index, indent=2) + "\n"))

    # --- devices ------------------------------------------------------------------------------------
    def to(self: P, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> P:
        """Move every network component (schedulers have no tensors to move) and put it in eval mode."""
        for component in self.components.values():
            if isinstance(component, nn.Module):
                component.to(device=device, dtype=dtype).eval()
        return self
