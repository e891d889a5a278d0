"""Add a CompNet variant to SLatFlow4D -- one registration, no edit to ss4d -- and use it by config.

The variant keeps the released layout (3D res blocks with 2x spatial pooling, then a temporal stage that
merges frame pairs) but its temporal res blocks use a *factorized* 4D conv (3^3 in space, then 5 frames
in time) instead of the 1D temporal conv. It starts from the shipped ss4d-tiny SLat flow: every shared
weight loads, only the temporal convs are new. A few steps on a toy objective later the network is saved,
reloaded (``conv_type`` names the variant) and run again, bit-identically.

    python examples/custom_compnet_variant.py --out out/custom_compnet_variant
"""

import argparse
from functools import partial
from pathlib import Path

import torch

from ss4d.layers import FactorizedSparseConv4d
from ss4d.models import SLatFlow4D
from ss4d.models.slat_flow import CompNetVariant, register_compnet_variant
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "ss4d-tiny" / "slat_flow"

register_compnet_variant(
    "3d_factorized", CompNetVariant(temporal_conv=partial(FactorizedSparseConv4d, temporal_kernel=5))
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/custom_compnet_variant"))
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED, help="a SLatFlow4D folder to start from")
    parser.add_argument("--frames", type=int, default=4, help="even")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)

    shipped = SLatFlow4D.from_pretrained(args.checkpoint)
    model = SLatFlow4D(shipped.config.replace(conv_type="3d_factorized"))
    report = model.load_checkpoint(shipped.state_dict(), strict=False, source=args.checkpoint)
    new = [k for k in report.missing if "_blocks_t." in k]
    if len(new) != len(report.missing) or report.mismatched:
        raise RuntimeError(f"only the temporal convs should differ: {report.describe()}")
    print(f"{shipped.config.conv_type} -> 3d_factorized: {len(model.state_dict()) - len(new)} shared tensors loaded, "
          f"{len(new)} new (e.g. {new[0]}), {len(report.unexpected)} shipped ones unused")  # fmt: skip

    c, T = model.config, args.frames
    g = torch.Generator().manual_seed(0)
    occupied = torch.rand(T, c.resolution, c.resolution, c.resolution, generator=g) < 0.05
    occupied[:, 0, 0, 0] = True
    idx = torch.nonzero(occupied).int()
    x = SparseTensor(torch.randn(len(idx), c.in_channels, generator=g), idx, SpacetimeLayout(1, T),
                     spatial_shape=(c.resolution,) * 3)  # fmt: skip
    t, cond = torch.full((1,), 0.7), torch.randn(1, T, 4, c.cond_channels, generator=g)
    target = torch.randn(len(idx), c.out_channels, generator=g)  # a toy objective: a fixed velocity field
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(args.steps):
        loss = (model(x, t, cond).feats - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"  step {step}: loss {loss.item():.4f}")
    model.eval()
    model.save_pretrained(args.out)
    loaded = SLatFlow4D.from_pretrained(args.out)
    with torch.no_grad():
        a, b = model(x, t, cond), loaded(x, t, cond)
    identical = torch.equal(a.feats, b.feats) and a.same_sites(x)
    conv = type(loaded.input_blocks_t[0].conv1).__name__
    print(f"saved to {args.out}; reloaded {loaded.config.conv_type!r} ({conv}); identical output: {identical}")
    if not identical or conv != "FactorizedSparseConv4d":
        raise RuntimeError("the reloaded network differs")


if __name__ == "__main__":
    main()
