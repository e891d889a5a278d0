"""Peak memory of reading a long clip with ``max_frames`` / ``stride``: does the limit bound memory?

Writes a folder of 200 RGBA frames of 512^2 (PNG), then, for each ss4d checkout given (``--code DIR``, default:
this one), runs ``load_clip`` in a fresh process and reports its peak RSS (``ru_maxrss``) next to the peak RSS
of the same process that only imports ss4d and torch (the baseline every row includes).

    python benchmarks/media_memory.py --code /path/to/old/checkout --code . --out benchmarks/results/media_memory.md
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PROBE = """
import json, resource, sys
import torch
from ss4d.data import load_clip
kind, folder = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = 0
if kind != "import":
    kw = {"max_frames=16": {"max_frames": 16}, "stride=25": {"stride": 25}}.get(kind, {"max_frames": 200})
    n = load_clip(folder, **kw).num_frames
import ss4d
print(json.dumps({"frames": n, "import_mib": base / 1024, "ss4d": ss4d.__file__,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
KINDS = ["import", "max_frames=16", "stride=25", "all 200 frames"]


def make_clip(folder: Path, frames: int = 200, size: int = 512) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for t in range(frames):
        a = np.zeros((size, size, 4), np.uint8)
        a[..., :3] = rng.integers(0, 255, 3)
        a[100 + t : 300 + t, 150:350, 3] = 255
        Image.fromarray(a, "RGBA").save(folder / f"{t:04d}.png", compress_level=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", action="append", help="an ss4d checkout to measure (repeatable)")
    ap.add_argument("--out", help="write a markdown table here")
    args = ap.parse_args()
    codes = args.code or [str(Path(__file__).resolve().parents[1])]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        make_clip(Path(d))
        for code in codes:
            for kind in KINDS:
                env = {"PYTHONPATH": str(Path(code).resolve()), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
                r = subprocess.run([sys.executable, "-c", PROBE, kind, d], env=env, capture_output=True, text=True,
                                   cwd=d)  # not the caller's folder: `python -c` imports from the cwd first
                if r.returncode:
                    raise SystemExit(r.stderr)
                rows.append({"code": code, "read": kind, **json.loads(r.stdout)})
                if not rows[-1]["ss4d"].startswith(str(Path(code).resolve())):
                    raise SystemExit(f"measured {rows[-1]['ss4d']}, not {code}")
    lines = ["| ss4d checkout | read (200 RGBA frames, 512^2) | frames kept | peak RSS (MiB) | of which import (MiB) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['code']} | {r['read']} | {r['frames']} | {r['peak_mib']:.0f} | {r['import_mib']:.0f} |"
              for r in rows]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(f"Measured by `python benchmarks/media_memory.py {' '.join(sys.argv[1:])}`\n\n{text}")


if __name__ == "__main__":
    main()
