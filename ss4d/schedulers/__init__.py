"""Floor 1b: flow-matching schedulers (diffusers contract), guidance and training timesteps.

Imports nothing above ``ss4d.ops``: models, pipelines and training all use it. See docs/design.md,
"Schedulers and pipelines", for the contract and how to add a scheduler.
"""

from ss4d.schedulers.base import (
    SCHEDULERS,
    FlowMatchScheduler,
    FlowMatchSchedulerConfig,
    SchedulerOutput,
    load_scheduler,
    register_scheduler,
)
from ss4d.schedulers.euler import FlowMatchEulerScheduler
from ss4d.schedulers.guidance import ClassifierFreeGuidance
from ss4d.schedulers.heun import FlowMatchHeunScheduler
from ss4d.schedulers.multistep import FlowMatchAB2Scheduler
from ss4d.schedulers.training import logit_normal_timesteps

__all__ = [
    "SCHEDULERS",
    "ClassifierFreeGuidance",
    "FlowMatchAB2Scheduler",
    "FlowMatchEulerScheduler",
    "FlowMatchHeunScheduler",
    "FlowMatchScheduler",
    "FlowMatchSchedulerConfig",
    "SchedulerOutput",
    "load_scheduler",
    "logit_normal_timesteps",
    "register_scheduler",
]
