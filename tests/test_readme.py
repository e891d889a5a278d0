"""README doc test: every ```python and ```bash block of README.md runs, with tiny settings.

The blocks are extracted from README.md at test time (nothing of them is copied here), so README stays the
single source: change the README and this test runs the new text. Tiny settings are regex substitutions
(fewer steps, clips, frames) plus a tiny training config written where the README's config path points. A
``<!-- doctest-setup ... -->`` comment right before a block holds invisible setup code (e.g. example tensors);
``<!-- doctest: skip (reason) -->`` skips a block and must give a reason. Blocks run in a scratch folder that
links the repository's examples/, checkpoints/ and configs/, so nothing is written into the repository.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = [  # (pattern, replacement): the README's settings -> seconds on a CPU
    (r"--num \d+", "--num 2"),
    (r"--frames \d+", "--frames 2"),
    (r"--limit \d+", "--limit 1"),
    (r"--steps \d+", "--steps 1"),
    (r"num_steps=\d+", "num_steps=1"),
    (r"(ss4d generate \S+ -o \S+)", r"\1 --steps 1 --no-preview --max-frames 4"),
    (r"pipe\((\"[^\"]+\")", r"pipe(\1, max_frames=4"),
]


@dataclass
class Block:
    lang: str
    code: str
    line: int
    setup: str = ""
    skip: str | None = None


def readme_blocks(text: str) -> list[Block]:
    blocks, setup, skip = [], "", None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("<!-- doctest-setup"):
            end = next(j for j in range(i, len(lines)) if lines[j].strip() == "-->")
            setup, i = "\n".join(lines[i + 1 : end]), end + 1
            continue
        if m := re.match(r"<!-- doctest: skip \((.+)\) -->", line):
            skip = m.group(1)
        elif m := re.match(r"```(python|bash)\s*$", line):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(m.group(1), "\n".join(lines[i + 1 : end]), i + 1, setup, skip))
            setup, skip, i = "", None, end + 1
            continue
        elif line.startswith("```"):
            setup, skip = "", None
        i += 1
    return blocks


def tiny(code: str) -> str:
    for pattern, replacement in TINY:
        code = re.sub(pattern, replacement, code)
    return code


def bash_commands(code: str) -> str:
    """The block's commands, without the installation steps (CI installs before the tests run)."""
    out = []
    for line in code.splitlines():
        steps = [s for s in line.split(" && ") if not re.match(r"\s*(python3 -m venv|\.venv/bin/pip|pip) ", s)]
        out.append(" && ".join(s.replace(".venv/bin/", "") for s in steps))
    return "\n".join(out)


BLOCKS = readme_blocks((REPO / "README.md").read_text())


def _tiny_training_config(path: Path) -> None:
    config = json.loads((REPO / "configs" / "ss4d-tiny.json").read_text())
    for spec in config["stages"].values():
        spec["train"] = {**spec.get("train", {}), "max_steps": 1, "warmup_steps": 0, "log_every": 1,
                         "ckpt_every": 1}  # fmt: skip
        for key in ("batch_size", "frames"):
            if key in spec:
                spec[key] = 1 if key == "batch_size" else 2
        if "frame_schedule" in spec:
            spec["frame_schedule"] = [[0, 2]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))


@pytest.fixture
def scratch(tmp_path) -> Path:
    for name in ("examples", "checkpoints"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "configs").mkdir()
    for p in (REPO / "configs").iterdir():
        (tmp_path / "configs" / p.name).symlink_to(p)
    (tmp_path / "configs" / "ss4d-tiny.json").unlink()
    _tiny_training_config(tmp_path / "configs" / "ss4d-tiny.json")
    return tmp_path


def test_readme_has_runnable_blocks_and_every_skip_has_a_reason():
    assert sum(b.skip is None for b in BLOCKS) >= 5
    assert all(b.skip.strip() for b in BLOCKS if b.skip is not None)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}-{b.lang}" for b in BLOCKS])
def test_readme_block_runs(block: Block, scratch: Path):
    if block.skip is not None:
        pytest.skip(block.skip)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.setup + "\n" + tiny(block.code)]
    else:
        script = f'ss4d() {{ "{sys.executable}" -m ss4d.cli "$@"; }}\nset -euo pipefail\n'
        cmd = ["bash", "-c", script + tiny(bash_commands(block.code))]
    result = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README.md line {block.line}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
