"""ss4d: native 4D generation with structured spacetime latents.

Floors (a lower floor never imports a higher one): ``ss4d.ops`` -> ``ss4d.schedulers`` / ``ss4d.layers`` ->
``ss4d.models`` -> ``ss4d.pipelines``. ``import ss4d`` imports nothing heavy (not even torch); the names below
load their module on first use (``from ss4d import SS4DPipeline``).
"""

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "SS4DPipeline": "ss4d.pipelines",
    "SS4DOutput": "ss4d.pipelines",
    "FlowMatchEulerScheduler": "ss4d.schedulers",
    "FlowMatchHeunScheduler": "ss4d.schedulers",
    "FlowMatchAB2Scheduler": "ss4d.schedulers",
}

__all__ = [
    "FlowMatchAB2Scheduler",
    "FlowMatchEulerScheduler",
    "FlowMatchHeunScheduler",
    "SS4DOutput",
    "SS4DPipeline",
    "__version__",
]
# (no `if TYPE_CHECKING:` imports here: every floor imports `ss4d.__version__`, and the import-floor
# contract would see ss4d.ops -> ss4d -> ss4d.pipelines)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'ss4d' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
