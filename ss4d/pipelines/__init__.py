"""Floor 4: the CFM scheduler and ``SS4DPipeline``.

Empty until the pipeline issue lands; floors below it (``ss4d.ops``, ``ss4d.layers``) are usable now.
"""

__all__: list[str] = []
