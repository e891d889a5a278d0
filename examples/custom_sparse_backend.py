"""Register your own sparse-convolution backend; it passes ss4d's conformance check and joins "auto".

The backend below runs every sparse conv with float64 accumulation (a high-precision reference for
debugging fp32 drift): it reuses ss4d's kernel maps and only changes the arithmetic. Registered with a CPU
priority above the built-in ``torch`` backend, it becomes what ``backend="auto"`` picks on CPU -- no
edit to ss4d, no global switch. The example checks it against the reference (forward and backward,
empty and single-voxel tensors), runs the shipped ss4d-tiny SLat flow on it, saves the network, reloads
it and runs it again.

    python examples/custom_sparse_backend.py --out out/custom_sparse_backend
"""

import argparse
from pathlib import Path

import torch

from ss4d.models import SLatFlow4D
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor, sparse_conv_backends
from ss4d.ops.sparse.backends import SparseConvBackend, gather_gemm_scatter
from ss4d.ops.sparse.conformance import check_sparse_conv_backend
from ss4d.ops.sparse.kernel_map import submanifold_kernel_map

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "ss4d-tiny" / "slat_flow"


class Float64Backend(SparseConvBackend):
    """Gather-GEMM-scatter in float64, cast back to the input dtype (any device with float64)."""

    name = "float64"
    install_hint = ""

    def is_available(self, device: torch.device) -> bool:
        return device.type in ("cpu", "cuda")

    def _run(self, feats, weight, pairs):
        return gather_gemm_scatter(feats.double(), weight.double(), pairs).to(feats.dtype)

    def submanifold(self, x, weight, kernel_size, dilation):
        return self._run(x.feats, weight, submanifold_kernel_map(x.sites, kernel_size, dilation))

    def strided(self, x, weight, conv_map):
        return self._run(x.feats, weight, conv_map.pairs)

    def inverse(self, y, weight, conv_map):
        return self._run(y.feats, weight, conv_map.pairs.transposed())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/custom_sparse_backend"))
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED, help="a SLatFlow4D folder")
    parser.add_argument("--frames", type=int, default=4, help="even")
    args = parser.parse_args()

    before = sparse_conv_backends.resolve("auto", "cpu").name
    sparse_conv_backends.register(Float64Backend(), priority={"cpu": 100, "cuda": 1})
    after = sparse_conv_backends.resolve("auto", "cpu").name
    print(f'"auto" on CPU: {before} -> {after} (priority order {sparse_conv_backends.priority("cpu")})')
    cases = check_sparse_conv_backend("float64")
    print(f"conformance: {cases} cases match the torch reference (outputs and gradients)")

    model = SLatFlow4D.from_pretrained(args.checkpoint)
    c, T = model.config, args.frames
    g = torch.Generator().manual_seed(0)
    occupied = torch.rand(T, c.resolution, c.resolution, c.resolution, generator=g) < 0.05
    occupied[:, 0, 0, 0] = True
    idx = torch.nonzero(occupied).int()
    x = SparseTensor(torch.randn(len(idx), c.in_channels, generator=g), idx, SpacetimeLayout(1, T),
                     spatial_shape=(c.resolution,) * 3)  # fmt: skip
    t, cond = torch.full((1,), 0.7), torch.randn(1, T, 4, c.cond_channels, generator=g)
    with torch.no_grad():
        ours = model(x, t, cond).feats  # every conv layer has backend="auto": now float64
        with sparse_conv_backends.use("torch"):
            reference = model(x, t, cond).feats
    print(f"SLat flow on float64 vs torch: max |diff| {(ours - reference).abs().max().item():.2e}")
    model.save_pretrained(args.out)
    with torch.no_grad():
        again = SLatFlow4D.from_pretrained(args.out)(x, t, cond).feats
    print(f"saved to {args.out}, reloaded, ran on {sparse_conv_backends.resolve('auto', 'cpu').name}: "
          f"identical output {torch.equal(ours, again)}")  # fmt: skip
    if not torch.equal(ours, again) or not torch.allclose(ours, reference, atol=1e-4, rtol=1e-4):
        raise RuntimeError("the float64 backend disagrees")


if __name__ == "__main__":
    main()
