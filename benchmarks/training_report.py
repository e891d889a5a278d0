"""Loss curves and a per-stage table (steps, wall time, final losses) of finished `ss4d train` runs.

    python benchmarks/training_report.py runs/ss4d-tiny runs/ss4d-tiny-no-temporal \
        runs/ss4d-tiny-round2 runs/ss4d-tiny-no-temporal-round2 --out docs/images

Writes ``<out>/training_curves.png`` (one panel per stage, one line per run, EMA-smoothed) and prints a
markdown table. Wall time is the sum over the stage's uninterrupted segments (``elapsed_s`` restarts at
each resume), so pauses between segments are not counted.
"""

import argparse
import csv
from pathlib import Path

STAGES = ("structure_vae", "slat_vae", "condition_encoder", "structure_flow", "slat_flow")
EXTRA = {"structure_vae": "dice", "slat_vae": "ssim", "condition_encoder": "iou", "structure_flow": None,
         "slat_flow": None}  # fmt: skip


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of ``log.csv``; a step logged twice (a run stopped after it but before its next checkpoint, then
    resumed) keeps its last occurrence in the curves."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def by_step(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return sorted({r["step"]: r for r in rows}.values(), key=lambda r: r["step"])


def wall_time(rows: list[dict[str, float]]) -> float:
    """Seconds of training: ``elapsed_s`` restarts from ~0 after each resume, so sum each segment's maximum."""
    total, last = 0.0, 0.0
    for r in rows:
        if r["elapsed_s"] < last:
            total += last
        last = r["elapsed_s"]
    return total + last


def smooth(values: list[float], rate: float = 0.6) -> list[float]:
    out, acc = [], values[0] if values else 0.0
    for v in values:
        acc = rate * acc + (1 - rate) * v
        out.append(acc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STAGES), figsize=(4 * len(STAGES), 3.2))
    print("| run | stage | steps | wall time | final loss (mean of last 50 steps) | |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        for ax, stage in zip(axes, STAGES, strict=True):
            path = run / stage / "log.csv"
            if not path.is_file():
                print(f"| {run.name} | {stage} | 0 (reused through `init`, or no such stage) | | | |")
                continue
            log = read_log(path)
            rows = by_step(log)
            steps = [r["step"] for r in rows]
            ax.plot(steps, smooth([r["loss"] for r in rows]), label=run.name)
            ax.set_title(stage)
            ax.set_xlabel("step")
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            tail = [r for r in rows if r["step"] > steps[-1] - 50]
            loss = sum(r["loss"] for r in tail) / len(tail)
            extra = EXTRA[stage]
            note = f"{extra} {sum(r[extra] for r in tail) / len(tail):.4f}" if extra else ""
            minutes = wall_time(log) / 60
            print(f"| {run.name} | {stage} | {int(steps[-1])} | {minutes:.1f} min | {loss:.4f} | {note} |")
    axes[0].set_ylabel("loss (EMA-smoothed)")
    max(axes, key=lambda a: len(a.get_lines())).legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "training_curves.png", dpi=90)
    print(f"\nwrote {args.out / 'training_curves.png'}")


if __name__ == "__main__":
    main()
