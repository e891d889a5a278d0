"""Turn a pytest-benchmark JSON of the sparse-conv benchmarks into a markdown table and a PNG plot.

Usage (from the repo root)::

    python -m pytest benchmarks/test_sparse_conv_bench.py --benchmark-json=benchmarks/results/sparse_conv.json
    python benchmarks/report.py benchmarks/results/sparse_conv.json

Writes ``benchmarks/results/sparse_conv.md`` and ``benchmarks/results/sparse_conv.png``.
"""

import argparse
import json
import platform
from collections import defaultdict
from pathlib import Path

from ss4d.ops.sparse import sparse_conv_backends


def load(path: Path) -> tuple[list[dict], dict]:
    data = json.loads(path.read_text())
    rows = []
    for b in data["benchmarks"]:
        info = b["extra_info"]
        rows.append(
            {
                **info,
                "headline": (b.get("group") or "").startswith("headline"),
                "median_ms": b["stats"]["median"] * 1e3,
                "min_ms": b["stats"]["min"] * 1e3,
            }
        )
    return rows, data.get("machine_info", {})


def table(rows: list[dict]) -> str:
    by_case: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        by_case[(r["kernel"], r["dist"], r["mode"], r["voxels"], r["channels"])][r["backend"]] = r
    order = sparse_conv_backends.names()  # registry order; unknown (e.g. user) backends last
    backends = sorted({r["backend"] for r in rows}, key=lambda n: (order.index(n) if n in order else len(order), n))
    head = ["kernel", "voxels", "dist", "mode", "channels"] + [f"{b} ms" for b in backends]
    head += [f"{b}/spconv" for b in backends if b != "spconv"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(by_case, key=lambda k: (k[0], k[1], k[2], k[3], k[4])):
        kernel, dist, mode, n, c = key
        cells = [kernel, f"{n:,}", dist, mode, str(c)]
        case = by_case[key]
        cells += [f"{case[b]['median_ms']:.1f}" if b in case else "-" for b in backends]
        for b in backends:
            if b == "spconv":
                continue
            if b in case and "spconv" in case:
                cells.append(f"{case[b]['median_ms'] / case['spconv']['median_ms']:.2f}")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [r for r in rows if not r["headline"] and r["mode"] in ("fwd", "fwd+bwd")]
    kernels = sorted({r["kernel"] for r in grid})
    modes = ["fwd", "fwd+bwd"]
    fig, axes = plt.subplots(len(kernels), len(modes), figsize=(11, 4 * len(kernels)), squeeze=False)
    for i, kernel in enumerate(kernels):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            series = defaultdict(list)
            for r in grid:
                if r["kernel"] == kernel and r["mode"] == mode and r["voxels"] > 0:
                    series[(r["backend"], r["channels"])].append((r["voxels"], r["median_ms"]))
            for (backend, c), pts in sorted(series.items()):
                pts.sort()
                style = "-" if backend == "torch" else "--"
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=f"{backend} c={c}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("active voxels (8 frames, shell)")
            ax.set_ylabel("median ms")
            ax.set_title(f"{kernel} {mode}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, nargs="?", default=Path("benchmarks/results/sparse_conv.json"))
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rows, machine = load(args.json)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cpu = machine.get("cpu", {}).get("brand_raw", platform.processor() or platform.machine())
    md = [
        "# Sparse-convolution backends (CPU)",
        "",
        f"Machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} cores; fp32; median of the rounds.",
        "spconv's CPU conv runs single-threaded inside ss4d (it is wrong with more threads), and its CPU backward",
        "is computed by torch ops over spconv's pairs (spconv's own CPU backward needs CUDA).",
        "`fwd`: kernel map cached; `fwd+map`: map built in the timed call; `fwd+bwd`: forward + backward.",
        "",
        "Command: `python -m pytest benchmarks/test_sparse_conv_bench.py "
        "--benchmark-json=benchmarks/results/sparse_conv.json && python benchmarks/report.py`",
        "",
        table(rows),
        "",
    ]
    (args.out_dir / "sparse_conv.md").write_text("\n".join(md))
    plot(rows, args.out_dir / "sparse_conv.png")
    print("\n".join(md))


if __name__ == "__main__":
    main()
