"""A tour of ss4d's sparse spacetime ops on an animated voxel object (runs on CPU in seconds).

An object (a sphere shell that bounces and squashes over T frames) is voxelised per frame into one
spacetime SparseTensor; a small CompNet-like encoder-decoder runs over it: factorized 4D conv ->
spatial 2x downsample -> temporal packing of frame pairs -> full 3^4 conv -> exact inverses. Each
backend that can run here is compared with the pure-torch reference.

    python examples/sparse_ops_demo.py --frames 8 --resolution 32
"""

import argparse
import time

import torch

from ss4d.layers import FactorizedSparseConv4d, SparseConv4d, set_sparse_conv_backend
from ss4d.ops.sparse import (
    SpacetimeLayout,
    SparseTensor,
    sparse_conv_backends,
    spatial_downsample,
    spatial_upsample,
    temporal_downsample,
    temporal_upsample,
)


def bouncing_shell(frames: int, resolution: int) -> SparseTensor:
    """Voxelise a bouncing, squashing sphere shell in [-0.5, 0.5]^3; features = (x, y, z, t, 1)."""
    centres = (torch.arange(resolution) + 0.5) / resolution - 0.5
    gx, gy, gz = torch.meshgrid(centres, centres, centres, indexing="ij")
    coords, feats = [], []
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        height = 0.25 * abs(torch.cos(torch.tensor(phase * torch.pi)).item()) - 0.1
        squash = 1.0 - 0.3 * (1 - abs(torch.cos(torch.tensor(phase * torch.pi)).item()))
        r = ((gx / 0.3) ** 2 + (gy / 0.3) ** 2 + ((gz - height) / (0.3 * squash)) ** 2).sqrt()
        xyz = torch.nonzero((r - 1).abs() < 1.5 / (0.3 * resolution))
        coords.append(torch.cat([torch.full((len(xyz), 1), t), xyz], 1))
        pos = centres[xyz]
        feats.append(torch.cat([pos, torch.full((len(xyz), 1), phase), torch.ones(len(xyz), 1)], 1))
    return SparseTensor(
        torch.cat(feats), torch.cat(coords), SpacetimeLayout(1, frames), spatial_shape=(resolution,) * 3
    )


class TinyCompNet(torch.nn.Module):
    """Factorized 4D conv, 2x spatial + 2x temporal compression, a 3^4 conv, and exact inverses."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.stem = FactorizedSparseConv4d(5, channels)
        self.mid = SparseConv4d(channels, channels)
        self.head = FactorizedSparseConv4d(2 * channels, 5)

    def forward(self, x: SparseTensor) -> SparseTensor:
        h = self.stem(x).apply(torch.nn.functional.silu)
        down, spatial_map = spatial_downsample(h)
        packed, temporal_map = temporal_downsample(down)  # (B, T) -> (B, T/2)
        packed = self.mid(packed).apply(torch.nn.functional.silu)
        up = spatial_upsample(temporal_upsample(packed, temporal_map), spatial_map)
        skip = h.replace(torch.cat([h.feats, up.feats], dim=1))  # same sites as h: exact inverses
        return self.head(skip)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="frames (even, for temporal packing)")
    parser.add_argument("--resolution", type=int, default=32, help="voxel grid side")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = bouncing_shell(args.frames, args.resolution)
    counts = torch.bincount(x.frame_index.long(), minlength=args.frames).tolist()
    print(f"input: {x}\n  voxels per frame: {counts}")
    model = TinyCompNet().eval()
    results = {}
    for backend in sparse_conv_backends.available(x.device):
        set_sparse_conv_backend(model, backend)
        with torch.no_grad():
            model(x)  # builds the kernel maps
            start = time.perf_counter()
            out = model(x)
            results[backend] = (out, time.perf_counter() - start)
    ref, _ = results["torch"]
    print(f"output: {ref}")
    if not ref.same_sites(x):
        raise RuntimeError("the decoder must return exactly the input sites")
    for backend, (out, seconds) in results.items():
        err = (out.feats - ref.feats).abs().max().item()
        print(f"  backend {backend:>11}: {seconds * 1e3:7.1f} ms  max |diff| vs torch = {err:.2e}")
    down, _ = spatial_downsample(x)
    packed, _ = temporal_downsample(down)
    print(f"compressed latent: {packed.num_voxels} voxels, layout {packed.layout}, grid {packed.spatial_shape}")


if __name__ == "__main__":
    main()
