"""`SS4DPipeline`: a monocular video in, one set of 3D Gaussians per frame out (paper Fig. 2).

Stages (each callable on its own): :meth:`encode_condition` (per-frame condition tokens) ->
:meth:`sample_structure` (structure flow + structure decoder: active voxels per frame) ->
:meth:`sample_slat` (SLat flow on those voxels; odd T padded with the last frame and cropped back) ->
:meth:`decode` (Gaussian decoder). ``pipe(clip)`` runs them all and returns an :class:`SS4DOutput`.

A pipeline folder (DESIGN §6) holds ``model_index.json`` (component -> class name from an allowlist,
sampler settings, latent normalisation) and one subfolder per component (``config.json`` +
``model.safetensors``; for DINOv2 a transformers-format folder).
"""

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int, Int32
from torch import Tensor
from tqdm.auto import tqdm

from ss4d import __version__
from ss4d.data import Clip, load_clip
from ss4d.errors import CheckpointError, InputError, NonFiniteError
from ss4d.models import (
    DinoV2Encoder,
    GaussianDecoder4D,
    SLatFlow4D,
    SparseStructureDecoder,
    StructureFlow4D,
    TinyImageEncoder,
    occupancy_to_coords,
)
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor
from ss4d.pipelines.folder import read_index
from ss4d.pipelines.output import SS4DOutput
from ss4d.pipelines.preprocess import Preprocessed, pad_frames, preprocess_clip
from ss4d.pipelines.provenance import check_stage, config_hash, frame_notice
from ss4d.pipelines.scheduler import FlowMatchingScheduler
from ss4d.representations import Gaussians
from ss4d.utils.atomic import atomic_folder
from ss4d.utils.device import check_device
from ss4d.utils.untrusted import check_finite

__all__ = ["COMPONENT_CLASSES", "SS4DPipeline", "SamplerParams"]

COMPONENT_CLASSES: dict[str, type] = {
    "TinyImageEncoder": TinyImageEncoder,
    "DinoV2Encoder": DinoV2Encoder,
    "SparseStructureDecoder": SparseStructureDecoder,
    "StructureFlow4D": StructureFlow4D,
    "SLatFlow4D": SLatFlow4D,
    "GaussianDecoder4D": GaussianDecoder4D,
}
"""The only classes a ``model_index.json`` may name (no arbitrary imports)."""

COMPONENTS = ("condition_encoder", "structure_decoder", "structure_flow", "slat_flow", "slat_decoder")


@dataclass(frozen=True)
class SamplerParams:
    """Euler sampler settings (TRELLIS image-large defaults: 25 steps, interval [0.5, 1], rescale_t 3)."""

    num_steps: int = 25
    cfg_strength: float = 3.0
    cfg_interval: tuple[float, float] = (0.5, 1.0)
    rescale_t: float = 3.0


class SS4DPipeline:
    """Video -> 4D Gaussians. Build from components, or :meth:`from_pretrained` a pipeline folder."""

    def __init__(
        self,
        *,
        condition_encoder: torch.nn.Module,
        structure_decoder: SparseStructureDecoder,
        structure_flow: StructureFlow4D,
        slat_flow: SLatFlow4D,
        slat_decoder: GaussianDecoder4D,
        slat_mean: Sequence[float] | None = None,
        slat_std: Sequence[float] | None = None,
        structure_sampler: SamplerParams = SamplerParams(cfg_strength=7.5),
        slat_sampler: SamplerParams = SamplerParams(cfg_strength=3.0),
        sigma_min: float = 1e-5,
    ) -> None:
        self.condition_encoder, self.structure_decoder = condition_encoder, structure_decoder
        self.structure_flow, self.slat_flow, self.slat_decoder = structure_flow, slat_flow, slat_decoder
        latent = slat_flow.config.in_channels
        self.slat_mean = tuple(float(v) for v in (slat_mean or [0.0] * latent))
        self.slat_std = tuple(float(v) for v in (slat_std or [1.0] * latent))
        self.structure_sampler, self.slat_sampler = structure_sampler, slat_sampler
        self.sigma_min = sigma_min
        check_finite(list(self.slat_mean) + list(self.slat_std), "slat_normalization (mean, std)",
                     fix="the statistics are corrupt; recompute them or use another model")  # fmt: skip
        self.source: dict[str, str] = {}  # model folder and config hash (set by from_pretrained)
        self.trained_frames: int | None = None  # longest clip seen in training, when known
        self._check_components()

    def _check_components(self) -> None:
        sf, dec, lf, gd = (
            self.structure_flow.config,
            self.structure_decoder.config,
            self.slat_flow.config,
            self.slat_decoder.config,
        )
        res = sf.resolution * dec.downsample_factor
        problems = []
        if sf.out_channels != dec.latent_channels:
            problems.append(
                f"structure flow outputs {sf.out_channels} channels, the decoder takes {dec.latent_channels}"
            )
        if res != lf.resolution or res != gd.resolution:
            problems.append(
                f"structure resolution {res} vs SLat flow {lf.resolution} vs Gaussian decoder {gd.resolution}"
            )
        enc_c = getattr(self.condition_encoder, "out_channels", None)
        if enc_c is not None and not (enc_c == sf.cond_channels == lf.cond_channels):
            problems.append(f"condition channels {enc_c} vs flows {sf.cond_channels} / {lf.cond_channels}")
        if lf.out_channels != gd.latent_channels or len(self.slat_mean) != gd.latent_channels:
            problems.append(
                f"SLat channels: flow {lf.out_channels}, decoder {gd.latent_channels}, stats {len(self.slat_mean)}"
            )
        if problems:
            raise ValueError("inconsistent pipeline components: " + "; ".join(problems))

    # --- persistence --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        local_files_only: bool = True,
    ) -> "SS4DPipeline":
        """Load a pipeline folder (or, with huggingface_hub installed and online, a hub id).

        Raises:
            FileNotFoundError: no such folder / no model_index.json / missing component folder.
            DeviceError: ``device`` is malformed or not on this machine.
            CheckpointError: anything :func:`~ss4d.pipelines.folder.read_index` or a component's
                ``from_pretrained`` refuses (allowlist, confinement, damaged or non-finite files, inconsistency).
        """
        check_device(device)
        folder = Path(path)
        if not folder.is_dir():
            if local_files_only or "/" not in str(path) or str(path).startswith((".", "/")):
                raise FileNotFoundError(
                    f"{path}: no such pipeline folder (local_files_only=True; ss4d never downloads unless asked)"
                )
            try:
                from huggingface_hub import snapshot_download
            except ImportError as e:
                raise FileNotFoundError(f"{path} is not a folder and huggingface_hub is not installed") from e
            folder = Path(snapshot_download(str(path)))
        checked = read_index(folder, COMPONENTS, set(COMPONENT_CLASSES))  # before anything is loaded
        index = checked.raw
        loaded = {}
        for name, (class_name, sub) in checked.components.items():
            comp_cls = COMPONENT_CLASSES[class_name]
            loaded[name] = comp_cls(sub) if comp_cls is DinoV2Encoder else comp_cls.from_pretrained(sub)
        norm = index.get("slat_normalization", {})
        try:
            pipe = cls(
                **loaded,
                slat_mean=norm.get("mean"),
                slat_std=norm.get("std"),
                structure_sampler=_params(index.get("structure_sampler"), SamplerParams(cfg_strength=7.5)),
                slat_sampler=_params(index.get("slat_sampler"), SamplerParams(cfg_strength=3.0)),
                sigma_min=float(index.get("sigma_min", 1e-5)),
            )
        except NonFiniteError as e:
            raise NonFiniteError(f"{checked.path}: {e}") from e
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{checked.path}: {e}") from e
        pipe.source = {"model": str(folder), "config_hash": config_hash(folder, COMPONENTS)}
        pipe.trained_frames = index.get("trained_frames")
        return pipe.to(device, dtype)

    def save_pretrained(self, path: str | Path, *, dtype: torch.dtype | None = None, overwrite: bool = False) -> Path:
        """Write the pipeline folder, whole or not at all (:func:`ss4d.utils.atomic_folder`; an existing
        non-empty folder is replaced only with ``overwrite=True``); ``dtype`` stores the parameters in that
        type (e.g. ``torch.float16`` for a half-size folder)."""
        with atomic_folder(path, overwrite=overwrite) as tmp:
            self._write_pretrained(tmp, dtype=dtype)
        return Path(path)

    def _write_pretrained(self, folder: Path, *, dtype: torch.dtype | None = None) -> None:
        components = {}
        for name in COMPONENTS:
            module = getattr(self, name)
            class_name = type(module).__name__
            if class_name not in COMPONENT_CLASSES or class_name == "DinoV2Encoder":
                if class_name == "DinoV2Encoder":
                    module.model.save_pretrained(folder / name)
                else:
                    raise ValueError(f"component {name} of class {class_name} cannot be saved (not on the allowlist)")
            else:
                module.save_pretrained(folder / name, dtype=dtype)
            components[name] = class_name
        index = {
            "_class_name": type(self).__name__,
            "_ss4d_version": __version__,
            "components": components,
            "slat_normalization": {"mean": list(self.slat_mean), "std": list(self.slat_std)},
            "structure_sampler": asdict(self.structure_sampler),
            "slat_sampler": asdict(self.slat_sampler),
            "sigma_min": self.sigma_min,
            **({"trained_frames": self.trained_frames} if self.trained_frames else {}),
        }
        (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "SS4DPipeline":
        for name in COMPONENTS:
            getattr(self, name).to(device=device, dtype=dtype).eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.structure_flow.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.condition_encoder.image_size)

    # --- stages -------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_condition(self, images: Float[Tensor, "t 3 s s"]) -> Float[Tensor, "1 t l c"]:
        """Per-frame condition tokens of preprocessed frames."""
        return self.condition_encoder(images.to(self.device)).unsqueeze(0)

    @torch.no_grad()
    def sample_structure(
        self, cond: Float[Tensor, "1 t l c"], *, generator: torch.Generator | None = None,
        params: SamplerParams | None = None, progress: bool = True,
    ) -> Int32[Tensor, "n 4"]:  # fmt: skip
        """Active voxels ``(t, x, y, z)`` at the SLat resolution for every frame.

        Raises:
            RuntimeError: a frame came out with no voxel at all.
        """
        p = params or self.structure_sampler
        c = self.structure_flow.config
        T = cond.shape[1]
        noise = torch.randn((1, T, c.in_channels, c.resolution, c.resolution, c.resolution), generator=generator,
                            device=self.device)  # fmt: skip
        velocity = lambda x, t, cnd: self.structure_flow(x, torch.full((1,), t, device=x.device), cnd)  # noqa: E731
        z = FlowMatchingScheduler(self.sigma_min).sample(
            velocity, noise, cond, neg_cond=torch.zeros_like(cond), num_steps=p.num_steps, rescale_t=p.rescale_t,
            cfg_strength=p.cfg_strength, cfg_interval=p.cfg_interval, progress=_bar(progress, "structure", p.num_steps),
        ).samples  # fmt: skip
        check_stage("structure", z)
        coords = occupancy_to_coords(self.structure_decoder(z))
        empty = sorted(set(range(T)) - set(coords[:, 0].unique().tolist()))
        if empty:
            raise RuntimeError(f"the structure stage produced no voxels for frames {empty}; try another seed or model")
        return coords

    @torch.no_grad()
    def sample_slat(
        self, cond: Float[Tensor, "1 t l c"], coords: Int32[Tensor, "n 4"], *, generator: torch.Generator | None = None,
        params: SamplerParams | None = None, progress: bool = True,
    ) -> SparseTensor:  # fmt: skip
        """Structured latents on ``coords`` (entry = frame); odd T is padded with the last frame and cropped."""
        p = params or self.slat_sampler
        T = cond.shape[1]
        res = self.slat_flow.config.resolution
        coords = coords.to(self.device)
        if T % 2:  # the SLat stage packs frame pairs: repeat the last frame, crop afterwards
            last = coords[coords[:, 0] == T - 1].clone()
            last[:, 0] = T
            coords = torch.cat([coords, last])
            cond, _ = pad_frames(cond[0])
            cond = cond[None]
        Tp = cond.shape[1]
        sites = SparseTensor(torch.zeros(coords.shape[0], 1, device=self.device), coords, SpacetimeLayout(1, Tp),
                             spatial_shape=(res,) * 3)  # fmt: skip
        noise = torch.randn(
            (sites.num_voxels, self.slat_flow.config.in_channels), generator=generator, device=self.device
        )

        def velocity(x: Tensor, t: float, cnd: Tensor) -> Tensor:
            return self.slat_flow(sites.replace(x), torch.full((1,), t, device=x.device), cnd).feats

        feats = FlowMatchingScheduler(self.sigma_min).sample(
            velocity, noise, cond, neg_cond=torch.zeros_like(cond), num_steps=p.num_steps, rescale_t=p.rescale_t,
            cfg_strength=p.cfg_strength, cfg_interval=p.cfg_interval, progress=_bar(progress, "slat", p.num_steps),
        ).samples  # fmt: skip
        mean = torch.tensor(self.slat_mean, device=feats.device, dtype=feats.dtype)
        std = torch.tensor(self.slat_std, device=feats.device, dtype=feats.dtype)
        slat = sites.replace(feats * std + mean)
        if Tp != T:
            keep = slat.coords[:, 0] < T
            slat = SparseTensor(slat.feats[keep], slat.coords[keep], SpacetimeLayout(1, T), spatial_shape=(res,) * 3)
        return slat

    @torch.no_grad()
    def decode(self, slat: SparseTensor) -> list[Gaussians]:
        return self.slat_decoder(slat)

    # --- the whole job ------------------------------------------------------------------------------
    def preprocess(self, source: Any, *, masks: Tensor | None = None, max_frames: int | None = None,
                   stride: int = 1, fps: float | None = None) -> Preprocessed:  # fmt: skip
        clip = source if isinstance(source, Clip) else load_clip(source, max_frames=max_frames, stride=stride, fps=fps)
        return preprocess_clip(clip, self.image_size, masks=masks)

    def __call__(
        self,
        source: Any,
        *,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        num_steps: int | None = None,
        cfg_strength: float | None = None,
        slat_cfg_strength: float | None = None,
        cfg_interval: tuple[float, float] | None = None,
        rescale_t: float | None = None,
        max_frames: int | None = None,
        stride: int = 1,
        fps: float | None = None,
        masks: Tensor | None = None,
        structure: Int[Tensor, "n 4"] | None = None,
        progress: bool = True,
    ) -> SS4DOutput:
        """Generate the 4D object of a clip (file, folder, PIL list, tensor or :class:`~ss4d.data.Clip`).

        ``num_steps``, ``cfg_interval``, ``rescale_t`` apply to both stages; ``cfg_strength`` to the structure
        stage and ``slat_cfg_strength`` to the SLat stage (defaults from the pipeline's sampler settings).
        ``structure`` skips stage 1: your own ``(t, x, y, z)`` voxels at the SLat resolution.
        """
        timings: dict[str, float] = {}
        seed_used = (0 if seed is None else seed) if generator is None else None  # None: the caller's generator
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(0 if seed is None else seed)
        given = {"num_steps": num_steps, "cfg_interval": cfg_interval, "rescale_t": rescale_t}
        overrides = {k: v for k, v in given.items() if v is not None}
        ss_params = replace(self.structure_sampler, **overrides)
        slat_params = replace(self.slat_sampler, **overrides)
        if cfg_strength is not None:
            ss_params = replace(ss_params, cfg_strength=cfg_strength)
        if slat_cfg_strength is not None:
            slat_params = replace(slat_params, cfg_strength=slat_cfg_strength)
        with _timer(timings, "preprocess"):
            pre = self.preprocess(source, masks=masks, max_frames=max_frames, stride=stride, fps=fps)
        check_stage("preprocess", pre.images)
        frame_notice(pre.images.shape[0], self.trained_frames)
        with _timer(timings, "condition"):
            cond = self.encode_condition(pre.images)
        check_stage("condition", cond)
        T = cond.shape[1]
        res = self.slat_flow.config.resolution
        if structure is None:
            with _timer(timings, "structure"):
                coords = self.sample_structure(cond, generator=generator, params=ss_params, progress=progress)
        else:
            coords = _check_structure(structure, T, res)
        with _timer(timings, "slat"):
            slat = self.sample_slat(cond, coords, generator=generator, params=slat_params, progress=progress)
        check_stage("slat", slat.feats)
        with _timer(timings, "decode"):
            gaussians = self.decode(slat)
        for g in gaussians:
            check_stage("decode", torch.cat([g.xyz, g.features.flatten(1), g.scaling, g.rotation, g.opacity], 1))
        per_frame = [slat.coords[slat.coords[:, 0] == t, 1:].cpu() for t in range(T)]
        settings = {"seed": seed_used, **self.source,
                    "structure_sampler": asdict(ss_params) if structure is None else "given (structure=)",
                    "slat_sampler": asdict(slat_params), "mask_source": pre.mask_source}  # fmt: skip
        return SS4DOutput(gaussians, per_frame, pre.images.cpu(), res, timings, settings)


def _params(d: dict | None, default: SamplerParams) -> SamplerParams:
    if not d:
        return default
    d = dict(d)
    if "cfg_interval" in d:
        d["cfg_interval"] = tuple(float(v) for v in d["cfg_interval"])
    return replace(default, **d)


def _check_structure(structure: Tensor, T: int, res: int) -> Tensor:
    if structure.ndim != 2 or structure.shape[1] != 4 or structure.dtype.is_floating_point:
        raise InputError(
            f"`structure` must be integer [n, 4] (t, x, y, z), got {structure.dtype} {tuple(structure.shape)}"
        )
    if structure.shape[0] == 0 or int(structure[:, 1:].min()) < 0 or int(structure[:, 1:].max()) >= res:
        raise InputError(f"`structure` voxels must lie in 0..{res - 1}")
    frames = set(structure[:, 0].unique().tolist())
    if frames != set(range(T)):
        raise InputError(f"`structure` must have voxels in every frame 0..{T - 1}, got frames {sorted(frames)}")
    order = torch.argsort(structure[:, 0], stable=True)
    return structure[order].int()


@contextmanager
def _timer(timings: dict, name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def _bar(enabled: bool, name: str, total: int):
    if not enabled:
        return None
    return lambda it: tqdm(it, total=total, desc=name, leave=False)
