"""3D Gaussian representations and their files (beside the floors; no model code)."""

from ss4d.representations.gaussians import (
    SCALING_ACTIVATIONS,
    GaussianActivation,
    Gaussians,
    ScalingActivation,
    quaternion_to_matrix,
)
from ss4d.representations.io import load_npz, load_ply, save_npz, save_ply, save_ply_sequence

__all__ = [
    "SCALING_ACTIVATIONS",
    "GaussianActivation",
    "Gaussians",
    "ScalingActivation",
    "load_npz",
    "load_ply",
    "quaternion_to_matrix",
    "save_npz",
    "save_ply",
    "save_ply_sequence",
]
