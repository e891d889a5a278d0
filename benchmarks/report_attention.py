"""Table and plot for benchmarks/test_temporal_attention_bench.py.

Usage::

    python -m pytest benchmarks/test_temporal_attention_bench.py \
        --benchmark-json=benchmarks/results/temporal_attention.json
    python benchmarks/report_attention.py

Writes ``benchmarks/results/temporal_attention.md`` and ``.png``.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, nargs="?", default=Path("benchmarks/results/temporal_attention.json"))
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    rows = [{**b["extra_info"], "ms": b["stats"]["median"] * 1e3} for b in data["benchmarks"]]
    series: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for r in rows:
        series[(r["kind"], r["mode"], r["backend"])][r["frames"]] = r
    frames = sorted({r["frames"] for r in rows})
    lines = [
        "# TemporalLayer: time and peak memory vs frames (CPU, forward, no grad)",
        "",
        "C=256, 4 heads (d=64); dense: 128 tokens per frame; sparse: ~128 voxels per frame. `window8` = windows of",
        "8 frames with shift 4; `full` = all frames of the sample. MB = peak resident-set growth over one forward",
        "(high-water mark reset just before the call, fresh process).",
        "",
        "Command: `python -m pytest benchmarks/test_temporal_attention_bench.py "
        "--benchmark-json=benchmarks/results/temporal_attention.json && python benchmarks/report_attention.py`",
        "",
        "| tokens | mode | backend | "
        + " | ".join(f"T={t} ms" for t in frames)
        + " | time T=64 / T=8 | "
        + " | ".join(f"T={t} MB" for t in frames)
        + " |",
        "|" + "---|" * (4 + 2 * len(frames)),
    ]
    for (kind, mode, backend), by_t in sorted(series.items()):
        ms = [f"{by_t[t]['ms']:.1f}" if t in by_t else "-" for t in frames]
        mb = [f"{by_t[t]['peak_mb']:.0f}" if t in by_t else "-" for t in frames]
        ratio = f"{by_t[64]['ms'] / by_t[8]['ms']:.1f}" if 64 in by_t and 8 in by_t else "-"
        lines.append(f"| {kind} | {mode} | {backend} | " + " | ".join(ms) + f" | {ratio} | " + " | ".join(mb) + " |")
    md = "\n".join(lines) + "\n"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "temporal_attention.md").write_text(md)
    print(md)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (kind, mode, backend), by_t in sorted(series.items()):
        ts = sorted(by_t)
        style = "-" if mode == "window8" else "--"
        label = f"{kind} {mode} {backend}"
        axes[0].plot(ts, [by_t[t]["ms"] for t in ts], style, marker="o", label=label)
        axes[1].plot(ts, [max(by_t[t]["peak_mb"], 0.1) for t in ts], style, marker="o", label=label)
    for ax, name in zip(axes, ["median ms", "peak RSS growth MB"], strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("frames T")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out_dir / "temporal_attention.png", dpi=110)


if __name__ == "__main__":
    main()
