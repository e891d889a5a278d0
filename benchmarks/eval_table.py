"""Merge `ss4d eval --out` JSON files (e.g. one per clip, run as separate processes so that partial results
survive on a loaded machine) and print the markdown table of means: the model, its baselines and ceilings.

    python benchmarks/eval_table.py runs/evalclip/ss4d-tiny/*.json [--name ss4d-tiny]
"""

import argparse
import json
from pathlib import Path

COLS = ("psnr", "ssim", "temporal_error", "flicker", "iou", "iou_reversed")


def merge(paths: list[Path]) -> dict[str, list[dict]]:
    """``{method: [per-clip row, ...]}`` over the files (``model`` = the evaluated pipeline)."""
    rows: dict[str, list[dict]] = {}
    for path in paths:
        r = json.loads(path.read_text())
        rows.setdefault("model", []).extend(r["per_clip"])
        for group in ("baselines", "ceilings"):
            for name, ref in r.get(group, {}).items():
                rows.setdefault(name, []).extend(ref["per_clip"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--name", default="model")
    args = ap.parse_args()
    rows = merge(args.files)
    clips = sorted({r["clip"] for r in rows["model"]})
    print(f"{len(clips)} clips: {', '.join(clips)}\n")
    print("| method | " + " | ".join(COLS) + " |\n" + "|---" * (len(COLS) + 1) + "|")
    for name, rs in rows.items():
        cells = [f"{sum(r[c] for r in rs) / len(rs):.4f}" if all(c in r for r in rs) else "" for c in COLS]
        print(f"| {args.name if name == 'model' else name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
