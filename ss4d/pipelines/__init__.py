"""Floor 4: the CFM scheduler and (next) ``SS4DPipeline``."""

from ss4d.pipelines.scheduler import FlowMatchingScheduler, SampleOutput, StepOutput

__all__ = ["FlowMatchingScheduler", "SampleOutput", "StepOutput"]
