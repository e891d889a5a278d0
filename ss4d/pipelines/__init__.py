"""Floor 4: the CFM scheduler, preprocessing and ``SS4DPipeline``."""

from ss4d.pipelines.output import SS4DOutput
from ss4d.pipelines.pipeline import COMPONENT_CLASSES, SamplerParams, SS4DPipeline
from ss4d.pipelines.preprocess import Preprocessed, estimate_uniform_background_alpha, pad_frames, preprocess_clip
from ss4d.pipelines.presets import build_tiny_pipeline, shipped_tiny_path
from ss4d.pipelines.scheduler import FlowMatchingScheduler, SampleOutput, StepOutput

__all__ = [
    "COMPONENT_CLASSES",
    "FlowMatchingScheduler",
    "Preprocessed",
    "SS4DOutput",
    "SS4DPipeline",
    "SampleOutput",
    "SamplerParams",
    "StepOutput",
    "build_tiny_pipeline",
    "estimate_uniform_background_alpha",
    "pad_frames",
    "preprocess_clip",
    "shipped_tiny_path",
]
