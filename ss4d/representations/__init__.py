"""3D Gaussian representations (beside the floors; no model code)."""

from ss4d.representations.gaussians import GaussianActivation, Gaussians

__all__ = ["GaussianActivation", "Gaussians"]
