"""``import ss4d`` is light; the top-level names load their modules lazily."""

import subprocess
import sys

import pytest

import ss4d

CHECK = """
import sys
import ss4d
heavy = [m for m in ("torch", "ss4d.pipelines", "ss4d.models", "ss4d.schedulers") if m in sys.modules]
assert not heavy, heavy
from ss4d import SS4DPipeline
assert SS4DPipeline.__module__ == "ss4d.pipelines.pipeline" and "ss4d.pipelines" in sys.modules
"""


def test_import_is_light_and_names_load_on_first_use():
    subprocess.run([sys.executable, "-c", CHECK], check=True)


def test_top_level_names():
    from ss4d.pipelines import SS4DPipeline
    from ss4d.schedulers import FlowMatchHeunScheduler

    assert ss4d.SS4DPipeline is SS4DPipeline and ss4d.FlowMatchHeunScheduler is FlowMatchHeunScheduler
    assert set(ss4d.__all__) <= set(dir(ss4d))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ss4d.Nope  # noqa: B018


def test_all_lists_exactly_the_lazy_names():
    assert set(ss4d.__all__) == {"__version__", *ss4d._LAZY}
