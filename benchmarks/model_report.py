"""Model figures: max abs error vs the official fixtures, official-size parameter counts, and the CPU
time of one forward + backward step of each tiny config.

Usage (repo root): ``python benchmarks/model_report.py`` -> ``benchmarks/results/models.md``.
"""

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ss4d.convert import convert_official  # noqa: E402
from ss4d.models import (  # noqa: E402
    GaussianDecoder4D,
    GaussianDecoder4DConfig,
    SLatEncoder4D,
    SLatEncoder4DConfig,
    SLatFlow4D,
    SLatFlow4DConfig,
    SparseStructureDecoder,
    SparseStructureEncoder,
    SparseStructureVAEConfig,
    StructureFlow4D,
    StructureFlow4DConfig,
)
from ss4d.ops.sparse import SpacetimeLayout, SparseTensor  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "official"


def _sparse(t, prefix, res):
    return SparseTensor(t[f"{prefix}.feats"], t[f"{prefix}.coords"], SpacetimeLayout(1, 4), spatial_shape=(res,) * 3)


def parity() -> list[tuple[str, float]]:
    rows = []
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        ckpt = json.loads((folder / "config.json").read_text())["checkpoint_json"]
        model = convert_official(ckpt, folder / "model.safetensors").model
        t = load_file(str(folder / "T4.safetensors"))
        res = ckpt["args"].get("resolution")
        with torch.no_grad():
            if isinstance(model, StructureFlow4D):
                out = {
                    "x": model(t["in.x"].view(1, 4, *t["in.x"].shape[1:]), t["in.t"][:1] / 1000, t["in.cond"][None])[0]
                }
            elif isinstance(model, SLatFlow4D):
                out = {"feats": model(_sparse(t, "in", res), t["in.t"][:1] / 1000, t["in.cond"][None]).feats}
            elif isinstance(model, SLatEncoder4D):
                z, mean, logvar = model(_sparse(t, "in", res))
                out = {"z": z.feats, "mean": mean.feats, "logvar": logvar.feats}
            elif isinstance(model, GaussianDecoder4D):
                frames = model(_sparse(t, "in", res))
                names = {"_xyz": "_xyz", "_features_dc": "_features_dc", "_scaling": "_scaling",
                         "_rotation": "_rotation", "_opacity": "_opacity", "get_xyz": "xyz", "get_scaling": "scaling",
                         "get_opacity": "opacity", "get_rotation": "rotation", "get_features": "features"}  # fmt: skip
                out = {k: torch.cat([getattr(g, v) for g in frames]) for k, v in names.items()}
            else:
                out = {"logits": model(t["in.z"][None])[0]}
        err = max((out[k] - t[f"out.{k}"]).abs().max().item() for k in out)
        rows.append((f"{folder.name} ({ckpt['name']})", err))
    return rows


OFFICIAL = [
    (StructureFlow4D, StructureFlow4DConfig()),
    (SLatFlow4D, SLatFlow4DConfig()),
    (SLatEncoder4D, SLatEncoder4DConfig()),
    (GaussianDecoder4D, GaussianDecoder4DConfig()),
    (SparseStructureEncoder, SparseStructureVAEConfig()),
    (SparseStructureDecoder, SparseStructureVAEConfig()),
]


def sizes() -> list[tuple[str, float]]:
    rows = []
    with torch.device("meta"):
        for cls, cfg in OFFICIAL:
            rows.append((cls.__name__, cls(cfg).num_parameters() / 1e6))
    return rows


def step_times() -> list[tuple[str, int, float]]:
    """Small configs, 1 sample x 8 frames, one forward + backward on fresh inputs (kernel maps and windows
    built in the step, as with new training data), median of 5."""
    g = torch.Generator().manual_seed(0)

    def voxels(res, ch):
        occ = torch.rand(8, res, res, res, generator=g) < 0.15
        idx = torch.nonzero(occ).int()
        return SparseTensor(
            torch.randn(len(idx), ch, generator=g), idx, SpacetimeLayout(1, 8), spatial_shape=(res,) * 3
        )

    cases = {
        "StructureFlow4D (R=8, C=64, 2 blocks)": lambda: (
            m := StructureFlow4D(
                StructureFlow4DConfig(
                    resolution=8, model_channels=64, cond_channels=32, num_blocks=2, num_heads=4, patch_size=2, window=4
                )
            ),
            lambda: m(torch.randn(1, 8, 8, 8, 8, 8), torch.rand(1), torch.randn(1, 8, 16, 32)),
        ),  # fmt: skip
        "SLatFlow4D 3d_1d (R=16, C=64, 2 blocks)": lambda: (
            m := SLatFlow4D(
                SLatFlow4DConfig(
                    resolution=16, model_channels=64, cond_channels=32, num_blocks=2, num_heads=4, io_block_channels=32
                )
            ),
            lambda: m(voxels(16, 8), torch.rand(1), torch.randn(1, 8, 16, 32)).feats,
        ),  # fmt: skip
        "SLatEncoder4D (R=16, C=64, 2 blocks)": lambda: (
            m := SLatEncoder4D(
                SLatEncoder4DConfig(
                    resolution=16, in_channels=16, model_channels=64, num_blocks=2, num_heads=4, window=4, window_xyz=4
                )
            ),
            lambda: m(voxels(16, 16))[1].feats,
        ),  # fmt: skip
        "GaussianDecoder4D (R=16, C=64, 2 blocks, G=4)": lambda: (
            m := GaussianDecoder4D(
                GaussianDecoder4DConfig(
                    resolution=16, model_channels=64, num_blocks=2, num_heads=4, window=4, window_xyz=4, num_gaussians=4
                )
            ),
            lambda: torch.cat([gs._xyz for gs in m(voxels(16, 8))]),
        ),  # fmt: skip
        "SparseStructureDecoder (8^3 -> 32^3, channels 16/32/64)": lambda: (
            m := SparseStructureDecoder(
                SparseStructureVAEConfig(channels=(16, 32, 64), num_res_blocks=1, num_res_blocks_middle=1)
            ),
            lambda: m(torch.randn(1, 8, 8, 8, 8, 8)),
        ),  # fmt: skip
    }
    rows = []
    for name, build in cases.items():
        torch.manual_seed(0)
        model, run = build()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.02) if p.ndim > 1 else None

        def step(model=model, run=run):
            model.zero_grad()
            run().square().mean().backward()

        step()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        rows.append((name, model.num_parameters(), statistics.median(times) * 1e3))
    return rows


def main() -> None:
    lines = ["# Model figures", "", "Command: `python benchmarks/model_report.py`", "",
             "## Converted official modules vs the official outputs (tests/fixtures/official, float32, CPU)", "",
             "| fixture | max abs error |", "|---|---|"]  # fmt: skip
    lines += [f"| {name} | {err:.2e} |" for name, err in parity()]
    lines += [
        "",
        "## Parameters of the released configs (built on the meta device)",
        "",
        "| model | M params |",
        "|---|---|",
    ]
    lines += [f"| {name} | {m:.2f} |" for name, m in sizes()]
    threads = torch.get_num_threads()
    lines += ["", f"## One forward + backward step, small configs, 1 sample x 8 frames, CPU ({threads} threads)",
              "", "| model | params | ms |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {n:,} | {ms:.0f} |" for name, n, ms in step_times()]
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks" / "results" / "models.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
