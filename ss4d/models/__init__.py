"""Floor 3: the SS4D networks (structure VAE, structure flow, SLat VAE, SLat flow) and condition encoders.

Empty until the models issue lands; floors below it (``ss4d.ops``, ``ss4d.layers``) are usable now.
"""

__all__: list[str] = []
