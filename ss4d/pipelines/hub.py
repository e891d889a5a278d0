"""Where a pipeline comes from: an ss4d folder, an official SS4D release folder, or a hub id.

:func:`resolve_pipeline_source` decides which, and for a hub id downloads (through ``huggingface_hub``,
optional extra ``ss4d[hub]``) only the files the pipeline needs (``allow_patterns``). The options mean
what they mean in diffusers:

* ``cache_dir``: the hub cache (default ``$HF_HUB_CACHE``, ``~/.cache/huggingface/hub``);
* ``revision``: branch, tag or commit;
* ``local_files_only`` (or ``HF_HUB_OFFLINE=1``, read at call time): never touch the network, use the
  cache only. With nothing cached, :class:`~ss4d.errors.ModelNotCachedError` names the exact
  ``hf download`` command that fetches the files.

A local path always wins over a hub id of the same spelling; only ``owner/name`` strings that are not
existing paths are treated as hub ids.
"""

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ss4d.convert.release import OfficialRelease, is_official_release, read_release
from ss4d.errors import BackendUnavailableError, ModelNotCachedError, ReleaseFormatError
from ss4d.models import DINOV2_HUB_IDS, check_dinov2_folder

__all__ = [
    "HubOptions",
    "PipelineSource",
    "official_pipeline_kwargs",
    "resolve_condition_encoder",
    "resolve_pipeline_source",
    "resolve_release_checkpoints",
]

logger = logging.getLogger("ss4d")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SS4D_PATTERNS = ["model_index.json", "*/config.json", "*/model.safetensors"]
ENCODER_PATTERNS = ["config.json", "model.safetensors"]


@dataclass(frozen=True)
class HubOptions:
    """diffusers' meaning: ``cache_dir``, ``revision``, ``local_files_only`` (``HF_HUB_OFFLINE=1`` implies it)."""

    cache_dir: str | Path | None = None
    revision: str | None = None
    local_files_only: bool = False

    @property
    def offline(self) -> bool:
        env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
        return self.local_files_only or env in ("1", "on", "yes", "true")

    def command(self, repo_id: str, files: list[str] | None = None) -> str:
        """The shell command that puts ``files`` of ``repo_id`` into this cache."""
        parts = ["hf", "download", repo_id, *(files or [])]
        if self.revision:
            parts += ["--revision", self.revision]
        if self.cache_dir:
            parts += ["--cache-dir", str(self.cache_dir)]
        return " ".join(parts)


@dataclass(frozen=True)
class PipelineSource:
    kind: Literal["ss4d", "official"]
    folder: Path
    repo_id: str | None = None  # set when the folder came from the hub


def looks_like_hub_id(source: str | Path) -> bool:
    text = str(source)
    return not Path(text).exists() and not Path(text).is_absolute() and bool(_HUB_ID.match(text))


def _hub():
    try:
        import huggingface_hub
    except ImportError as e:
        raise BackendUnavailableError(
            "loading a hub id needs huggingface_hub: pip install 'ss4d[hub]' (or pass a local folder)"
        ) from e
    return huggingface_hub


def _download(repo_id: str, patterns: list[str], options: HubOptions) -> Path:
    """``snapshot_download`` restricted to ``patterns``; offline with nothing cached -> ModelNotCachedError."""
    hub = _hub()
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = hub.snapshot_download(
            repo_id,
            revision=options.revision,
            cache_dir=options.cache_dir,
            local_files_only=options.offline,
            allow_patterns=patterns,
        )
    except LocalEntryNotFoundError as e:
        plain = [p for p in patterns if not any(c in p for c in "*?[")]  # name the files when they are exact
        plain = plain if len(plain) == len(patterns) else []
        raise ModelNotCachedError(
            f"{repo_id} is not in the hub cache and downloads are off (HF_HUB_OFFLINE / local_files_only); "
            f"fetch it first with `{options.command(repo_id, plain or None)}`"
        ) from e
    return Path(folder)


def _hub_file(repo_id: str, filename: str, options: HubOptions) -> Path | None:
    """One file of a hub repo, or None when the repo has no such file. Offline and not cached -> None."""
    hub = _hub()
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            hub.hf_hub_download(
                repo_id, filename, revision=options.revision, cache_dir=options.cache_dir,
                local_files_only=options.offline,
            )
        )  # fmt: skip
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise FileNotFoundError(
            f"{repo_id}: no such hub repo or revision {options.revision or 'main'} (or it is private: `hf auth login`)"
        ) from e


def resolve_pipeline_source(source: str | Path, options: HubOptions = HubOptions()) -> PipelineSource:
    """Find the folder and its kind (ss4d ``model_index.json`` or official ``pipeline.json``).

    Raises:
        FileNotFoundError: a local path with neither file, or a path that is no folder and no hub id.
        ModelNotCachedError: a hub id offline with nothing cached (the message has the download command).
    """
    if not looks_like_hub_id(source):
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such pipeline folder (and not an owner/name hub id)")
        if (folder / "model_index.json").is_file():
            return PipelineSource("ss4d", folder)
        if is_official_release(folder):
            return PipelineSource("official", folder)
        raise FileNotFoundError(
            f"{folder / 'model_index.json'} not found: not an ss4d pipeline folder (model_index.json) nor an "
            "official SS4D release (pipeline.json)"
        )
    repo_id = str(source)
    options_offline_msg = f"fetch it first with `{options.command(repo_id)}`"
    if _hub_file(repo_id, "model_index.json", options) is not None:
        return PipelineSource("ss4d", _download(repo_id, SS4D_PATTERNS, options), repo_id)
    index = _hub_file(repo_id, "pipeline.json", options)
    if index is None:
        if options.offline:
            raise ModelNotCachedError(
                f"{repo_id}: no model_index.json or pipeline.json in the hub cache and downloads are off "
                f"(HF_HUB_OFFLINE / local_files_only); {options_offline_msg}"
            )
        raise FileNotFoundError(f"{repo_id}: the hub repo has neither model_index.json nor pipeline.json")
    release = read_release(index.parent)
    folder = _download(repo_id, release.needed_files(), options)
    return PipelineSource("official", folder, repo_id)


def resolve_release_checkpoints(release: OfficialRelease, options: HubOptions = HubOptions()) -> OfficialRelease:
    """Point checkpoints named ``owner/repo/<path>`` (not files of the release) at the hub cache."""
    for component, stem in release.external.items():
        parts = stem.split("/")
        if len(parts) < 3 or (release.folder / parts[0]).is_dir():
            continue  # a missing local file: check_release names it
        repo_id, inner = "/".join(parts[:2]), "/".join(parts[2:])
        folder = _download(repo_id, [f"{inner}.json", f"{inner}.safetensors"], options)
        if not (folder / f"{inner}.json").is_file():
            raise ReleaseFormatError(
                f"{release.folder / 'pipeline.json'}: the {component} checkpoint {stem!r} is neither in the folder "
                f"nor in hub repo {repo_id}; fetch it with `{options.command(repo_id)}`"
            )
        release.stem_paths[component] = folder / inner
    return release


def resolve_condition_encoder(
    spec: str | Path | None, image_cond_model: str, options: HubOptions = HubOptions()
) -> Path:
    """A vetted DINOv2 transformers folder: ``spec`` (folder or hub id), else the hub id of the release's
    ``image_cond_model`` (``dinov2_vitl14_reg`` -> ``facebook/dinov2-with-registers-large``).

    Raises:
        ReleaseFormatError: unknown ``image_cond_model`` and no ``spec``.
        UnsafeModelError: the folder is not a plain DINOv2 (see :func:`~ss4d.models.check_dinov2_folder`).
        ModelNotCachedError: a hub id offline with nothing cached.
    """
    if spec is None:
        if image_cond_model not in DINOV2_HUB_IDS:
            raise ReleaseFormatError(
                f"image_cond_model {image_cond_model!r} is not one ss4d maps ({sorted(DINOV2_HUB_IDS)}); pass "
                "condition_encoder= / --condition-encoder DIR"
            )
        spec = DINOV2_HUB_IDS[image_cond_model]
    if looks_like_hub_id(spec):
        folder = _download(str(spec), ENCODER_PATTERNS, options)
    else:
        folder = Path(spec)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder}: no DINOv2 folder (no config.json); download one with "
                f"`hf download {DINOV2_HUB_IDS['dinov2_vitl14_reg']} --local-dir DIR` and pass DIR"
            )
    check_dinov2_folder(folder)
    return folder


def official_pipeline_kwargs(
    folder: Path, *, condition_encoder: str | Path | None = None, options: HubOptions = HubOptions(),
    image_size: int = 518,
) -> dict:  # fmt: skip
    """The keyword arguments of ``SS4DPipeline(...)`` for an official release folder, converted in memory.

    Everything cheap is checked first (pipeline.json, every checkpoint's JSON and safetensors header, the
    DINOv2 folder); only then are weights read. Skipped decoders are logged as one-line notices.
    """
    from ss4d.convert.release import check_release, load_release
    from ss4d.models import DinoV2Encoder

    release = resolve_release_checkpoints(read_release(folder), options)
    check_release(release)
    encoder_folder = resolve_condition_encoder(condition_encoder, release.image_cond_model, options)
    for note in release.notes:
        logger.warning("%s: %s", folder.name or folder, note)
    models = load_release(release)
    return {
        "condition_encoder": DinoV2Encoder(encoder_folder, image_size=image_size),
        **models,
        "slat_mean": release.slat_mean,
        "slat_std": release.slat_std,
        "structure_sampler": release.structure_sampler,
        "slat_sampler": release.slat_sampler,
        "sigma_min": release.sigma_min,
    }
