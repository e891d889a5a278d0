"""ss4d: native 4D generation with structured spacetime latents.

Floors (a lower floor never imports a higher one): ``ss4d.ops`` -> ``ss4d.layers`` -> ``ss4d.models``
-> ``ss4d.pipelines``. ``import ss4d`` needs only torch; optional backends load on first use.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
