"""The browser viewer: ``viewer.html``, one self-contained page that plays a 4D result (WebGL2, no network)."""

from ss4d.viewer.build import (
    build_viewer_html,
    read_viewer_html,
    viewer_from_folder,
    voxels_from_gaussians,
    write_viewer,
)
from ss4d.viewer.pack import SplatFrame, decode_frame, decode_voxels, encode_sequence, splat_frame

__all__ = [
    "SplatFrame",
    "build_viewer_html",
    "decode_frame",
    "decode_voxels",
    "encode_sequence",
    "read_viewer_html",
    "splat_frame",
    "viewer_from_folder",
    "voxels_from_gaussians",
    "write_viewer",
]
