"""Floor 4: ``SS4DPipeline``, its persistence base and component registry, the denoising loop, preprocessing."""

from ss4d.pipelines.base import COMPONENT_CLASSES, Pipeline, component_io, register_component
from ss4d.pipelines.denoise import denoise
from ss4d.pipelines.output import SS4DLatents, SS4DOutput
from ss4d.pipelines.pipeline import SamplerParams, SS4DPipeline, legacy_sampler
from ss4d.pipelines.preprocess import Preprocessed, estimate_uniform_background_alpha, pad_frames, preprocess_clip
from ss4d.pipelines.presets import build_tiny_pipeline, shipped_tiny_path

__all__ = [
    "COMPONENT_CLASSES",
    "Pipeline",
    "Preprocessed",
    "SS4DLatents",
    "SS4DOutput",
    "SS4DPipeline",
    "SamplerParams",
    "build_tiny_pipeline",
    "component_io",
    "denoise",
    "estimate_uniform_background_alpha",
    "legacy_sampler",
    "pad_frames",
    "preprocess_clip",
    "register_component",
    "shipped_tiny_path",
]
