"""`SS4DPipeline`: a monocular video in, one set of 3D Gaussians per frame out (paper Fig. 2).

Stages (each callable on its own): :meth:`encode_condition` (per-frame condition tokens) ->
:meth:`sample_structure` (structure flow + structure decoder: active voxels per frame) ->
:meth:`sample_slat` (SLat flow on those voxels; odd T padded with the last frame and cropped back) ->
:meth:`decode` (Gaussian decoder). ``pipe(clip)`` runs them all and returns an :class:`SS4DOutput`.

Both sampling stages run the one loop of :mod:`ss4d.pipelines.denoise` with their own scheduler component
(``structure_scheduler``, ``slat_scheduler``) and classifier-free guidance. A pipeline folder
(:class:`~ss4d.pipelines.base.Pipeline`, docs/design.md "Schedulers and pipelines") holds ``model_index.json``
(component -> registered class name, sampler settings, latent normalisation) and one subfolder per component
(``config.json`` + ``model.safetensors``; ``scheduler_config.json`` for a scheduler; a transformers-format
folder for DINOv2).
"""

import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float, Int, Int32
from torch import Tensor
from tqdm.auto import tqdm

from ss4d.data import Clip, load_clip
from ss4d.errors import InputError
from ss4d.models import (
    DinoV2Encoder,
    GaussianDecoder4D,
    SLatFlow4D,
    SparseStructureDecoder,
    StructureFlow4D,
    StructureFlow4DInsertTemporal,
    TinyImageEncoder,
    occupancy_to_coords,
)
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor
from ss4d.pipelines.base import COMPONENT_CLASSES, Pipeline, register_component
from ss4d.pipelines.denoise import denoise
from ss4d.pipelines.hub import HubOptions, PipelineSource, official_pipeline_kwargs
from ss4d.pipelines.output import SS4DLatents, SS4DOutput
from ss4d.pipelines.preprocess import Preprocessed, pad_frames, preprocess_clip
from ss4d.pipelines.provenance import check_stage, config_hash, frame_notice
from ss4d.pipelines.runtime import PipelineRuntime
from ss4d.pipelines.runtime import stage as run_stage
from ss4d.representations import Gaussians
from ss4d.schedulers import ClassifierFreeGuidance, FlowMatchEulerScheduler, FlowMatchScheduler
from ss4d.utils.untrusted import check_finite

__all__ = ["COMPONENT_CLASSES", "SS4DPipeline", "SamplerParams", "legacy_sampler"]

for _cls in (
    TinyImageEncoder, SparseStructureDecoder, StructureFlow4D, StructureFlow4DInsertTemporal, SLatFlow4D,
    GaussianDecoder4D,
):  # fmt: skip
    register_component(_cls)
# DINOv2 lives in a transformers-format folder (its weights are not ours to re-serialise differently)
register_component(DinoV2Encoder, load=DinoV2Encoder, save=lambda enc, folder, dtype: enc.model.save_pretrained(folder))

STAGES = ("structure", "slat")
LEGACY_CALL_ARGS = {  # old keyword -> new keyword (DeprecationWarning)
    "num_steps": "num_inference_steps",
    "cfg_strength": "guidance_scale",
    "slat_cfg_strength": "slat_guidance_scale",
    "cfg_interval": "guidance_interval",
}


@dataclass(frozen=True)
class SamplerParams:
    """A stage's call defaults: steps and classifier-free guidance (TRELLIS image-large: 25 steps, guidance
    inside [0.5, 1]). The solver and its time grid (``shift``, TRELLIS's ``rescale_t``) are the stage's scheduler."""

    num_steps: int = 25
    cfg_strength: float = 3.0
    cfg_interval: tuple[float, float] = (0.5, 1.0)

    @property
    def guidance(self) -> ClassifierFreeGuidance:
        return ClassifierFreeGuidance(self.cfg_strength, self.cfg_interval)


def legacy_sampler(
    d: dict | None, default: SamplerParams, *, sigma_min: float = 1e-5
) -> tuple[SamplerParams, FlowMatchEulerScheduler]:
    """Split a sampler dict of the older format (``num_steps``, ``cfg_strength``, ``cfg_interval``,
    ``rescale_t``; older ``model_index.json`` files and training configs) into the stage's call defaults and
    the Euler scheduler it described (``shift = rescale_t``, default 3.0)."""
    d = dict(d or {})
    shift = float(d.pop("rescale_t", 3.0))
    if "cfg_interval" in d:
        d["cfg_interval"] = tuple(float(v) for v in d["cfg_interval"])
    unknown = set(d) - {f.name for f in fields(SamplerParams)}
    if unknown:
        raise ValueError(f"unknown sampler keys {sorted(unknown)}; known: num_steps, cfg_strength, cfg_interval, "
                         "rescale_t")  # fmt: skip
    return replace(default, **d), FlowMatchEulerScheduler(sigma_min=sigma_min, shift=shift)


DEFAULT_SAMPLERS = {"structure": SamplerParams(cfg_strength=7.5), "slat": SamplerParams(cfg_strength=3.0)}


class SS4DPipeline(Pipeline):
    """Video -> 4D Gaussians. Build from components, or :meth:`from_pretrained` a pipeline folder.

    Components: the five networks and one scheduler per stage (``structure_scheduler``, ``slat_scheduler``;
    default: Euler with TRELLIS's ``shift = 3``). ``structure_sampler`` / ``slat_sampler`` hold each stage's
    default steps and guidance.
    """

    component_names = (
        "condition_encoder", "structure_decoder", "structure_flow", "slat_flow", "slat_decoder",
        "structure_scheduler", "slat_scheduler",
    )  # fmt: skip
    optional_components = ("structure_scheduler", "slat_scheduler")

    def __init__(
        self,
        *,
        condition_encoder: torch.nn.Module,
        structure_decoder: SparseStructureDecoder,
        structure_flow: StructureFlow4D,
        slat_flow: SLatFlow4D,
        slat_decoder: GaussianDecoder4D,
        structure_scheduler: FlowMatchScheduler | None = None,
        slat_scheduler: FlowMatchScheduler | None = None,
        slat_mean: Sequence[float] | None = None,
        slat_std: Sequence[float] | None = None,
        structure_sampler: SamplerParams = DEFAULT_SAMPLERS["structure"],
        slat_sampler: SamplerParams = DEFAULT_SAMPLERS["slat"],
    ) -> None:
        self.condition_encoder, self.structure_decoder = condition_encoder, structure_decoder
        self.structure_flow, self.slat_flow, self.slat_decoder = structure_flow, slat_flow, slat_decoder
        self.structure_scheduler = structure_scheduler or FlowMatchEulerScheduler(shift=3.0)
        self.slat_scheduler = slat_scheduler or FlowMatchEulerScheduler(shift=3.0)
        latent = slat_flow.config.in_channels
        self.slat_mean = tuple(float(v) for v in (slat_mean or [0.0] * latent))
        self.slat_std = tuple(float(v) for v in (slat_std or [1.0] * latent))
        self.structure_sampler, self.slat_sampler = structure_sampler, slat_sampler
        self.runtime = PipelineRuntime()
        check_finite(list(self.slat_mean) + list(self.slat_std), "slat_normalization (mean, std)",
                     fix="the statistics are corrupt; recompute them or use another model")  # fmt: skip
        self.source: dict[str, str] = {}  # model folder and config hash (set by from_pretrained)
        self.trained_frames: int | None = None  # longest clip seen in training, when known
        self._check_components()

    def _check_components(self) -> None:
        for name in ("structure_scheduler", "slat_scheduler"):
            if not isinstance(getattr(self, name), FlowMatchScheduler):
                raise TypeError(f"`{name}` must be an ss4d.schedulers.FlowMatchScheduler, "
                                f"got {type(getattr(self, name)).__name__}")  # fmt: skip
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

    # --- persistence (ss4d.pipelines.base.Pipeline does the folder) ---------------------------------
    def _index_settings(self) -> dict[str, Any]:
        return {
            "slat_normalization": {"mean": list(self.slat_mean), "std": list(self.slat_std)},
            "structure_sampler": asdict(self.structure_sampler),
            "slat_sampler": asdict(self.slat_sampler),
            **({"trained_frames": self.trained_frames} if self.trained_frames else {}),
        }

    @classmethod
    def _settings_from_index(cls, index: dict[str, Any], path: Path) -> dict[str, Any]:
        norm = index.get("slat_normalization", {})
        for stage in STAGES:  # a folder with scheduler components keeps the time grid there, not in the sampler
            sampler = index.get(f"{stage}_sampler") or {}
            if f"{stage}_scheduler" in index.get("components", {}) and "rescale_t" in sampler:
                raise ValueError(f"{path}: `{stage}_sampler.rescale_t` conflicts with the {stage}_scheduler component; "
                                 f"set `shift` in {stage}_scheduler/scheduler_config.json instead")  # fmt: skip
        try:
            samplers = {f"{s}_sampler": cls._legacy(index, s)[0] for s in STAGES}
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
        return {"slat_mean": norm.get("mean"), "slat_std": norm.get("std"), **samplers}

    @classmethod
    def _default_component(cls, name: str, index: dict[str, Any]) -> Any:
        """A folder written before schedulers were components: the Euler its sampler settings described."""
        return cls._legacy(index, name.removesuffix("_scheduler"))[1]

    @staticmethod
    def _legacy(index: dict[str, Any], stage: str) -> tuple[SamplerParams, FlowMatchEulerScheduler]:
        sigma_min = float(index.get("sigma_min", 1e-5))
        return legacy_sampler(index.get(f"{stage}_sampler"), DEFAULT_SAMPLERS[stage], sigma_min=sigma_min)

    @classmethod
    def _from_folder(cls, folder: Path) -> "SS4DPipeline":
        pipe = super()._from_folder(folder)
        pipe.source = {"model": str(folder), "config_hash": config_hash(folder, cls.component_names)}
        pipe.trained_frames = json.loads((folder / "model_index.json").read_text()).get("trained_frames")
        return pipe

    # --- loading official releases, devices, memory ----------------------------------------------------
    @classmethod
    def _from_source(
        cls,
        source: PipelineSource,
        options: HubOptions,
        *,
        condition_encoder: str | Path | None = None,
        attn_backend: str = "auto",
        sparse_conv_backend: str = "auto",
    ) -> "SS4DPipeline":
        """An ss4d folder, or an official SS4D release folder (``pipeline.json`` + ``ckpts/``) converted in
        memory; ``condition_encoder`` is a DINOv2 folder or hub id for a release (default: its
        ``image_cond_model``); ``attn_backend`` / ``sparse_conv_backend`` name the backends every stage runs."""
        runtime = PipelineRuntime(attn_backend, sparse_conv_backend)  # checks the names before any loading
        if source.kind == "official":
            kwargs = official_pipeline_kwargs(source.folder, condition_encoder=condition_encoder, options=options)
            sigma_min = float(kwargs.pop("sigma_min"))
            for name in STAGES:
                sampler = kwargs.pop(f"{name}_sampler")
                kwargs[f"{name}_sampler"], kwargs[f"{name}_scheduler"] = legacy_sampler(
                    sampler, DEFAULT_SAMPLERS[name], sigma_min=sigma_min
                )
            pipe = cls(**kwargs)
        else:
            if condition_encoder is not None:
                raise ValueError(f"{source.folder}: `condition_encoder` applies to official releases only; an ss4d "
                                 "pipeline folder holds its own condition_encoder component")  # fmt: skip
            pipe = cls._from_folder(source.folder)
        pipe.runtime = runtime
        return pipe

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "SS4DPipeline":
        """Move / cast every network (turns CPU offload off when a device is given)."""
        if device is not None:
            self.runtime.offload_device = None
        return super().to(device, dtype)

    def enable_model_cpu_offload(self, device: torch.device | str = "cuda") -> "SS4DPipeline":
        """Keep only the active stage's networks on ``device``; the others wait on the CPU."""
        self.to("cpu")
        self.runtime.enable_offload(device)
        return self

    @property
    def device(self) -> torch.device:
        """Where the stages run (the offload device when CPU offload is on)."""
        return self.runtime.offload_device or next(self.structure_flow.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.condition_encoder.image_size)

    # --- stages -------------------------------------------------------------------------------------
    @torch.no_grad()
    @run_stage("condition")
    def encode_condition(self, images: Float[Tensor, "t 3 s s"]) -> Float[Tensor, "1 t l c"]:
        """Per-frame condition tokens of preprocessed frames."""
        return self.condition_encoder(images.to(self.device)).unsqueeze(0)

    def _denoise(self, stage: str, velocity: Callable, latents: Tensor, cond: Tensor, params: SamplerParams,
                 progress: bool, callback: Callable | None) -> Tensor:  # fmt: skip
        """The stage's scheduler and guidance on the shared loop (:func:`~ss4d.pipelines.denoise.denoise`)."""
        step_callback = None
        if callback is not None:
            step_callback = lambda i, t, kw: callback(self, i, t, {**kw, "stage": stage})  # noqa: E731
        bar = (lambda it: tqdm(it, desc=stage, leave=False)) if progress else None
        return denoise(velocity, latents, cond, neg_cond=torch.zeros_like(cond),
                       scheduler=getattr(self, f"{stage}_scheduler"), num_inference_steps=params.num_steps,
                       guidance=params.guidance, callback=step_callback, progress=bar)  # fmt: skip

    @torch.no_grad()
    @run_stage("structure")
    def sample_structure(
        self, cond: Float[Tensor, "1 t l c"], *, generator: torch.Generator | None = None,
        params: SamplerParams | None = None, progress: bool = True, latents: Tensor | None = None,
        callback_on_step_end: Callable | None = None,
    ) -> Int32[Tensor, "n 4"]:  # fmt: skip
        """Active voxels ``(t, x, y, z)`` at the SLat resolution for every frame.

        ``latents`` (``[1, T, C, r, r, r]``) replaces the initial noise drawn from ``generator``.

        Raises:
            ValueError: ``latents`` of the wrong shape.
            RuntimeError: a frame came out with no voxel at all.
        """
        p = params or self.structure_sampler
        c = self.structure_flow.config
        T = cond.shape[1]
        shape = (1, T, c.in_channels, c.resolution, c.resolution, c.resolution)
        noise = _initial("latents", latents, shape, generator, self.device)
        velocity = lambda x, t, cnd: self.structure_flow(x, torch.full((1,), t, device=x.device), cnd)  # noqa: E731
        z = self._denoise("structure", velocity, noise, cond, p, progress, callback_on_step_end)
        check_stage("structure", z)
        coords = occupancy_to_coords(self.structure_decoder(z))
        empty = sorted(set(range(T)) - set(coords[:, 0].unique().tolist()))
        if empty:
            raise RuntimeError(f"the structure stage produced no voxels for frames {empty}; try another seed or model")
        return coords

    @torch.no_grad()
    @run_stage("slat")
    def sample_slat(
        self, cond: Float[Tensor, "1 t l c"], coords: Int32[Tensor, "n 4"], *, generator: torch.Generator | None = None,
        params: SamplerParams | None = None, progress: bool = True, latents: Tensor | None = None,
        callback_on_step_end: Callable | None = None,
    ) -> SparseTensor:  # fmt: skip
        """Structured latents on ``coords`` (entry = frame); odd T is padded with the last frame and cropped.

        ``latents`` (``[N, C]``: one row per voxel of ``coords`` in order, then, for odd T, the rows of the
        repeated last frame) replaces the initial noise drawn from ``generator``.
        """
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
        shape = (sites.num_voxels, self.slat_flow.config.in_channels)
        noise = _initial("slat_latents", latents, shape, generator, self.device)

        def velocity(x: Tensor, t: float, cnd: Tensor) -> Tensor:
            return self.slat_flow(sites.replace(x), torch.full((1,), t, device=x.device), cnd).feats

        feats = self._denoise("slat", velocity, noise, cond, p, progress, callback_on_step_end)
        mean = torch.tensor(self.slat_mean, device=feats.device, dtype=feats.dtype)
        std = torch.tensor(self.slat_std, device=feats.device, dtype=feats.dtype)
        slat = sites.replace(feats * std + mean)
        if Tp != T:
            keep = slat.coords[:, 0] < T
            slat = SparseTensor(slat.feats[keep], slat.coords[keep], SpacetimeLayout(1, T), spatial_shape=(res,) * 3)
        return slat

    @torch.no_grad()
    @run_stage("decode")
    def decode(self, slat: SparseTensor) -> list[Gaussians]:
        return self.slat_decoder(slat)

    # --- the whole job ------------------------------------------------------------------------------
    def preprocess(self, source: Any, *, masks: Tensor | None = None, max_frames: int | None = None,
                   stride: int = 1, fps: float | None = None) -> Preprocessed:  # fmt: skip
        clip = source if isinstance(source, Clip) else load_clip(source, max_frames=max_frames, stride=stride, fps=fps)
        return preprocess_clip(clip, self.image_size, masks=masks)

    def _call_params(self, num_inference_steps: int | None, guidance_scale: float | None,
                     slat_guidance_scale: float | None, guidance_interval: tuple[float, float] | None,
                     deprecated: dict[str, Any]) -> dict[str, SamplerParams]:  # fmt: skip
        """Each stage's settings for one call: its sampler defaults overridden by the call's arguments (and by
        the deprecated names, with a warning); validated before any heavy work."""
        given = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale,
                 "slat_guidance_scale": slat_guidance_scale, "guidance_interval": guidance_interval}  # fmt: skip
        for old, value in deprecated.items():
            if old not in LEGACY_CALL_ARGS:
                raise TypeError(f"SS4DPipeline.__call__() got an unexpected keyword argument {old!r}")
            new = LEGACY_CALL_ARGS[old]
            warnings.warn(f"`{old}` is deprecated, use `{new}`", DeprecationWarning, stacklevel=3)
            if given[new] is None:
                given[new] = value
        params = {}
        for stage, scale in (("structure", given["guidance_scale"]), ("slat", given["slat_guidance_scale"])):
            changes = {"num_steps": given["num_inference_steps"], "cfg_strength": scale,
                       "cfg_interval": given["guidance_interval"]}  # fmt: skip
            p = replace(getattr(self, f"{stage}_sampler"), **{k: v for k, v in changes.items() if v is not None})
            if isinstance(p.num_steps, bool) or not isinstance(p.num_steps, int) or p.num_steps < 1:
                raise ValueError(f"`num_inference_steps` must be an int >= 1, got {p.num_steps!r}")
            _ = p.guidance  # raises ValueError on a bad scale or interval
            params[stage] = p
        return params

    def __call__(
        self,
        source: Any,
        *,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        slat_guidance_scale: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
        latents: Tensor | None = None,
        slat_latents: Tensor | None = None,
        num_samples: int = 1,
        callback_on_step_end: Callable[["SS4DPipeline", int, float, dict], dict | None] | None = None,
        output_type: Literal["gaussians", "latent"] = "gaussians",
        return_dict: bool = True,
        max_frames: int | None = None,
        stride: int = 1,
        fps: float | None = None,
        masks: Tensor | None = None,
        structure: Int[Tensor, "n 4"] | None = None,
        progress: bool = True,
        **deprecated: Any,
    ) -> "SS4DOutput | SS4DLatents | list | tuple":
        """Generate the 4D object of a clip (file, folder, PIL list, tensor or :class:`~ss4d.data.Clip`).

        Args:
            num_inference_steps: steps of both stages (default: each stage's ``*_sampler.num_steps``).
            guidance_scale: classifier-free guidance of the structure stage; ``slat_guidance_scale``: of the SLat
                stage; ``guidance_interval``: the times where it applies, both stages (defaults: the samplers').
            generator: the random source of all initial noise (default: a generator seeded with ``seed``).
            latents: initial noise of the structure stage, ``[num_samples, T, C, r, r, r]``. slat_latents: that
                of the SLat stage, ``[N, C]`` (see :meth:`sample_slat`; only with ``num_samples=1``).
            num_samples: samples of the same clip, drawn one after another from ``generator`` (the first is the
                sample a call with ``num_samples=1`` gives).
            callback_on_step_end: ``f(pipe, step_index, t, kwargs)`` after every scheduler step; ``kwargs`` has
                ``latents``, ``pred_original_sample`` and ``stage`` (``"structure"`` / ``"slat"``); returning
                ``{"latents": x}`` replaces the latents.
            output_type: ``"gaussians"`` (decoded) or ``"latent"`` (structured latents, not decoded).
            return_dict: False returns a tuple with one entry per sample: its per-frame Gaussians (or its latent).
            structure: skip stage 1 with your own ``(t, x, y, z)`` voxels at the SLat resolution.

        Returns:
            An :class:`SS4DOutput` (``output_type="latent"``: an :class:`SS4DLatents`), or a list of them for
            ``num_samples > 1``.

        The older names ``num_steps``, ``cfg_strength``, ``slat_cfg_strength`` and ``cfg_interval`` still work,
        with a DeprecationWarning; the older ``rescale_t`` is now the schedulers' ``shift``.
        """
        params = self._call_params(num_inference_steps, guidance_scale, slat_guidance_scale, guidance_interval,
                                   deprecated)  # fmt: skip
        if output_type not in ("gaussians", "latent"):
            raise ValueError(f"`output_type` must be 'gaussians' or 'latent', got {output_type!r}")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"`num_samples` must be an int >= 1, got {num_samples!r}")
        if slat_latents is not None and num_samples != 1:
            raise ValueError("`slat_latents` fixes one sample's SLat noise: use it with num_samples=1")
        if latents is not None and (latents.ndim != 6 or latents.shape[0] != num_samples):
            raise ValueError(f"`latents` must be [num_samples={num_samples}, T, C, r, r, r], "
                             f"got {tuple(latents.shape)}")  # fmt: skip
        seed_used = (0 if seed is None else seed) if generator is None else None  # None: the caller's generator
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(0 if seed is None else seed)
        timings: dict[str, float] = {}
        self.runtime.peak_memory.clear()  # only this call's stages
        with _timer(timings, "preprocess"):
            pre = self.preprocess(source, masks=masks, max_frames=max_frames, stride=stride, fps=fps)
        check_stage("preprocess", pre.images)
        frame_notice(pre.images.shape[0], self.trained_frames)
        with _timer(timings, "condition"):
            cond = self.encode_condition(pre.images)
        check_stage("condition", cond)
        T = cond.shape[1]
        res = self.slat_flow.config.resolution
        given = None if structure is None else _check_structure(structure, T, res)
        results = []
        for k in range(num_samples):
            times = dict(timings)
            coords = given
            if coords is None:
                with _timer(times, "structure"):
                    coords = self.sample_structure(
                        cond, generator=generator, params=params["structure"], progress=progress,
                        latents=None if latents is None else latents[k : k + 1],
                        callback_on_step_end=callback_on_step_end,
                    )  # fmt: skip
            with _timer(times, "slat"):
                slat = self.sample_slat(cond, coords, generator=generator, params=params["slat"], progress=progress,
                                        latents=slat_latents, callback_on_step_end=callback_on_step_end)  # fmt: skip
            check_stage("slat", slat.feats)
            latent = SS4DLatents(slat, pre.images.cpu(), times)
            if output_type == "latent":
                results.append(latent)
                continue
            with _timer(times, "decode"):
                gaussians = self.decode(slat)
            for g in gaussians:
                check_stage("decode", torch.cat([g.xyz, g.features.flatten(1), g.scaling, g.rotation, g.opacity], 1))
            settings = {"seed": seed_used, "sample": k, **self.source,
                        "structure_sampler": asdict(params["structure"]) if given is None else "given (structure=)",
                        "slat_sampler": asdict(params["slat"]), "mask_source": pre.mask_source}  # fmt: skip
            results.append(SS4DOutput(gaussians, latent.coords, pre.images.cpu(), res, times,
                                      dict(self.runtime.peak_memory), settings))  # fmt: skip
        if not return_dict:
            return tuple(r.slat if output_type == "latent" else r.gaussians for r in results)
        return results[0] if num_samples == 1 else results


def _initial(name: str, given: Tensor | None, shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> Tensor:  # fmt: skip
    """A stage's initial noise: ``given`` (checked against ``shape``) or a draw from ``generator``."""
    if given is None:
        return torch.randn(shape, generator=generator, device=device)
    if tuple(given.shape) != shape or not given.dtype.is_floating_point:
        raise ValueError(f"`{name}` must be a float tensor of shape {shape}, got {given.dtype} {tuple(given.shape)}")
    return given.to(device)


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
