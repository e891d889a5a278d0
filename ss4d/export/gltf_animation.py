"""One animated glTF (``.glb``) for a mesh sequence: a node per frame, shown in turn.

Each frame's mesh (positions, ``COLOR_0`` as normalised uint8 RGBA, uint32 triangle indices) hangs from its own
node. One animation holds a ``scale`` channel per node with ``STEP`` interpolation at the clip's frame times:
scale 1 while it is that node's frame, 0 otherwise (glTF 2.0 has no visibility channel; this is the usual
substitute, played by Blender's importer and three.js). Topologies differ between frames, so morph targets do not
apply. Written with numpy and ``json`` only (the GLB container: a JSON chunk and a BIN chunk).
"""

import json
import struct
from collections.abc import Sequence

import numpy as np

from ss4d.errors import InputError

__all__ = ["animated_glb_bytes"]

FLOAT, UBYTE, UINT = 5126, 5121, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class _Buffer:
    def __init__(self) -> None:
        self.data, self.views, self.accessors = bytearray(), [], []

    def add(self, array: np.ndarray, component: int, kind: str, *, target: int | None = None,
            normalized: bool = False, bounds: bool = False) -> int:  # fmt: skip
        self.data.extend(b"\0" * (-len(self.data) % 4))
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": array.nbytes}
        if target is not None:
            view["target"] = target
        self.data.extend(np.ascontiguousarray(array).tobytes())
        acc = {"bufferView": len(self.views), "componentType": component, "count": len(array), "type": kind}
        if normalized:
            acc["normalized"] = True
        if bounds:
            flat = array.reshape(len(array), -1)
            acc["min"], acc["max"] = flat.min(0).tolist(), flat.max(0).tolist()
        self.views.append(view)
        self.accessors.append(acc)
        return len(self.accessors) - 1


def animated_glb_bytes(meshes: Sequence, fps: float) -> bytes:
    """A GLB playing ``meshes`` (``trimesh.Trimesh`` with vertex colours, one per frame) at ``fps``."""
    if not meshes:
        raise InputError("an animated glTF needs at least one mesh")
    if fps <= 0:
        raise InputError(f"`fps` must be > 0, got {fps}")
    T, buf = len(meshes), _Buffer()
    times = buf.add((np.arange(T + 1) / fps).astype("<f4"), FLOAT, "SCALAR", bounds=True)  # last key: loop point
    gltf_meshes, nodes, samplers, channels = [], [], [], []
    for i, m in enumerate(meshes):
        attributes = {"POSITION": buf.add(np.asarray(m.vertices, "<f4"), FLOAT, "VEC3", target=ARRAY_BUFFER,
                                          bounds=True)}  # fmt: skip
        colours = getattr(m.visual, "vertex_colors", None)
        if colours is not None and len(colours) == len(m.vertices):
            attributes["COLOR_0"] = buf.add(np.asarray(colours, np.uint8), UBYTE, "VEC4", target=ARRAY_BUFFER,
                                            normalized=True)  # fmt: skip
        indices = buf.add(np.asarray(m.faces, "<u4").reshape(-1), UINT, "SCALAR", target=ELEMENT_ARRAY_BUFFER)
        gltf_meshes.append({"primitives": [{"attributes": attributes, "indices": indices, "mode": 4}]})
        shown = np.append(np.arange(T) == i, i == T - 1).astype("<f4")
        nodes.append({"name": f"frame_{i:04d}", "mesh": i, "scale": [float(shown[0])] * 3})
        scales = buf.add(np.repeat(shown[:, None], 3, axis=1), FLOAT, "VEC3")
        samplers.append({"input": times, "output": scales, "interpolation": "STEP"})
        channels.append({"sampler": i, "target": {"node": i, "path": "scale"}})
    buf.data.extend(b"\0" * (-len(buf.data) % 4))
    doc = {
        "asset": {"version": "2.0", "generator": "ss4d"},
        "scene": 0,
        "scenes": [{"nodes": list(range(T))}],
        "nodes": nodes,
        "meshes": gltf_meshes,
        "animations": [{"name": "sequence", "samplers": samplers, "channels": channels}],
        "accessors": buf.accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": len(buf.data)}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(buf.data)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(js), b"JSON") + js
            + struct.pack("<I4s", len(buf.data), b"BIN\0") + bytes(buf.data))  # fmt: skip
