"""Insert your own temporal layer into the shipped no-temporal ss4d-tiny, by config, without editing ss4d.

The layer below (a gated, causal running mean over frames: no attention at all) is registered under a
name; ``temporal="insert"`` + ``temporal_layer=<name>`` in the flow configs puts one beside every block's
per-frame self-attention. Its gate starts at zero (``zero_output_``), so the inflated networks reproduce
the shipped 3D networks exactly until trained. Then a few steps on a toy objective open the gates, the
networks are saved, reloaded (the config names the layer) and run again, bit-identically.

    python examples/custom_temporal_layer.py --out out/custom_temporal_layer
"""

import argparse
from pathlib import Path

import torch
from torch import nn

from ss4d.layers import register_temporal_layer
from ss4d.models import SLatFlow4D, StructureFlow4D
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "ss4d-tiny-no-temporal"


@register_temporal_layer("causal_mean")
class CausalFrameMean(nn.Module):
    """Each token receives ``gate * proj(mean of its sample's tokens over frames 0..t)``.

    Dense tokens ``[B, T, M, C]`` average the same token position; sparse voxels average every voxel of the
    sample's frames up to t (a causal summary of the motion so far). Built with the temporal-layer keyword
    arguments of ss4d's blocks (``mode``, ``num_heads``, ``window``, ...), of which it needs none.
    """

    def __init__(self, channels: int, *, mode: str, device=None, dtype=None, **_unused) -> None:
        super().__init__()
        self.proj = nn.Linear(channels, channels, device=device, dtype=dtype)
        self.gate = nn.Parameter(torch.zeros(channels, device=device, dtype=dtype))

    def zero_output_(self) -> None:
        nn.init.zeros_(self.gate)

    def forward(self, x):
        if isinstance(x, SparseTensor):
            entries = x.layout.num_entries
            sums = x.feats.new_zeros(entries, x.num_channels).index_add_(0, x.coords[:, 0].long(), x.feats)
            counts = torch.bincount(x.coords[:, 0].long(), minlength=entries).to(x.dtype)
            T = x.layout.num_frames
            sums, counts = sums.view(-1, T, x.num_channels).cumsum(1), counts.view(-1, T).cumsum(1)
            means = (sums / counts.clamp_min(1)[..., None]).flatten(0, 1)
            return x.replace(self.gate * self.proj(means[x.coords[:, 0].long()]))
        frames = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return self.gate * self.proj(x.cumsum(dim=1) / frames)


def _inputs(model, frames: int, seed: int):
    """Random inputs of the right shapes for either flow."""
    g = torch.Generator().manual_seed(seed)
    c = model.config
    cond = torch.randn(1, frames, 4, c.cond_channels, generator=g)
    t = torch.full((1,), 0.7)
    if isinstance(model, StructureFlow4D):
        R = c.resolution
        return torch.randn(1, frames, c.in_channels, R, R, R, generator=g), t, cond
    occupied = torch.rand(frames, c.resolution, c.resolution, c.resolution, generator=g) < 0.05
    occupied[:, 0, 0, 0] = True
    idx = torch.nonzero(occupied).int()
    feats = torch.randn(len(idx), c.in_channels, generator=g)
    return SparseTensor(feats, idx, SpacetimeLayout(1, frames), spatial_shape=(c.resolution,) * 3), t, cond


def _values(out):
    return out.feats if isinstance(out, SparseTensor) else out


def inflate(cls, folder: Path, frames: int, steps: int, out: Path) -> None:
    shipped = cls.from_pretrained(folder)
    config = shipped.config.replace(temporal="insert", temporal_layer="causal_mean")
    model = cls(config)
    report = model.load_checkpoint(shipped.state_dict(), strict=False, source=folder)
    if report.unexpected or report.mismatched or not all(".temporal_attn." in k for k in report.missing):
        raise RuntimeError(f"inflation should only add the temporal layers' keys: {report.describe()}")
    model.eval()
    inputs = _inputs(model, frames, seed=0)
    with torch.no_grad():
        same = torch.equal(_values(model(*inputs)), _values(shipped(*inputs)))
    print(f"{cls.__name__}: {len(report.missing)} new keys; at init equal to the shipped 3D network: {same}")
    if not same:
        raise RuntimeError("a zero-gated inserted layer must not change the output")

    # a toy objective for the new layers only: regress a fixed random velocity field
    trainable = [p for n, p in model.named_parameters() if ".temporal_attn." in n]
    opt = torch.optim.Adam(trainable, lr=1e-2)
    target = torch.randn(_values(model(*inputs)).shape, generator=torch.Generator().manual_seed(1))
    model.train()
    for _ in range(steps):
        loss = (_values(model(*inputs)) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    gates = max(b.temporal_attn.gate.detach().abs().max().item() for b in model.blocks)
    model.save_pretrained(out / cls.__name__)
    loaded = cls.from_pretrained(out / cls.__name__)
    with torch.no_grad():
        identical = torch.equal(_values(model(*inputs)), _values(loaded(*inputs)))
    layer = type(loaded.blocks[0].temporal_attn).__name__
    print(f"  after {steps} steps: max |gate| {gates:.3g}; saved to {out / cls.__name__}; reloaded with {layer}, "
          f"identical output: {identical}")  # fmt: skip
    if not identical or layer != "CausalFrameMean":
        raise RuntimeError("the reloaded network differs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/custom_temporal_layer"))
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED, help="a pipeline folder whose flows are 3D")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    inflate(StructureFlow4D, args.checkpoint / "structure_flow", args.frames, args.steps, args.out)
    inflate(SLatFlow4D, args.checkpoint / "slat_flow", args.frames, args.steps, args.out)


if __name__ == "__main__":
    main()
