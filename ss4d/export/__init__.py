"""Exports of a 4D result: ``structure.npz`` (voxels + input frames), compressed splat formats, meshes."""

from ss4d.export.folder import export_folder, load_result_gaussians
from ss4d.export.gltf_animation import animated_glb_bytes
from ss4d.export.mesh import MeshStats, density_grid, gaussians_to_mesh, save_mesh_sequence
from ss4d.export.splats import (
    SPLAT_FORMATS,
    compressed_ply_bytes,
    read_compressed_ply,
    read_splat,
    save_splat_sequence,
    splat_bytes,
)
from ss4d.export.structure import Structure, load_structure, save_structure

__all__ = [
    "SPLAT_FORMATS",
    "MeshStats",
    "Structure",
    "animated_glb_bytes",
    "compressed_ply_bytes",
    "density_grid",
    "export_folder",
    "gaussians_to_mesh",
    "load_result_gaussians",
    "load_structure",
    "read_compressed_ply",
    "read_splat",
    "save_mesh_sequence",
    "save_splat_sequence",
    "save_structure",
    "splat_bytes",
]
