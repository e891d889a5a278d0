"""The exit-code contract, table-driven: every bad input below exits 2 with one ``error:`` line naming the
culprit (file, key or option) and a hint, and writes nothing. Each row builds its bad input in its own
folder; the whole folder (and the shared model) is compared before and after the command."""

import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from ss4d.cli import main

from .pipelines.tiny import moving_disc_clip, tiny_pipeline

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad-inputs") / "model"
    tiny_pipeline().save_pretrained(folder)
    return folder


# --- builders ------------------------------------------------------------------------------------------------
def gif(path: Path, T: int = 4, alpha: bool = True) -> Path:
    frames = []
    for f in moving_disc_clip(T):
        im = Image.fromarray((f[:3].permute(1, 2, 0) * 255).byte().numpy())
        if alpha:
            im.putalpha(Image.fromarray((f[3] * 255).byte().numpy()))
        frames.append(im)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, disposal=2)
    return path


def png(path: Path, mode: str = "RGBA", size: tuple[int, int] = (24, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (200, 20, 20, 255) if mode == "RGBA" else (200, 20, 20)).save(path)
    return path


def copy_model(model: Path, d: Path) -> Path:
    return Path(shutil.copytree(model, d / "m"))


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


def edit_weights(path: Path, change: Callable[[dict], None]) -> None:
    state = load_file(str(path))
    change(state)
    save_file(state, str(path))


def render_folder(d: Path, *, entry_change: Callable[[dict], None] | None = None, spec_change=None) -> Path:
    """A minimal valid TRELLIS-style render folder (one time step, one view), optionally broken."""
    png(d / "views" / "v0.png")
    entry = {"file_path": "views/v0.png", "transform_matrix": np.eye(4).tolist(), "time": 0}
    if entry_change:
        entry_change(entry)
    spec = {"camera_angle_x": 0.7, "frames": [entry]}
    if spec_change:
        spec_change(spec)
    (d / "transforms.json").write_text(json.dumps(spec))
    return d


def train_config(d: Path, change: Callable[[dict], None] | None = None) -> Path:
    config = json.loads((REPO / "configs" / "ss4d-tiny.json").read_text())
    (d / "data").mkdir(exist_ok=True)
    config["data"], config["out"] = str(d / "data"), str(d / "runs")
    if change:
        change(config)
    (d / "config.json").write_text(json.dumps(config))
    return d / "config.json"


def npz_with_lying_header(path: Path) -> Path:
    """A valid zip whose ``.npy`` member's header claims 10^9 x 3 floats but holds 2 x 3."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 3)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("_xyz.npy", buf.getvalue() + np.zeros((2, 3), np.float32).tobytes())
    return path


def audio_only(path: Path) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for packet in [*s.encode(frame), *s.encode()]:
            c.mux(packet)
    return path


def truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def hostile_header(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 10**15) + data[8:])
    return path


def gen(d: Path, model: Path, *extra: str, clip: Path | None = None, out: Path | None = None) -> list[str]:
    clip = clip if clip is not None else gif(d / "clip.gif")
    out = out if out is not None else d / "out"
    return ["generate", str(clip), "-o", str(out), "--model", str(model), "--steps", "1", "-q", *extra]


def pipeline_folder_row(change: Callable[[Path], None]):
    def build(d: Path, model: Path):
        m = copy_model(model, d)
        change(m)
        return gen(d, m)

    return build


def symlink_out(m: Path, rel: str) -> None:
    target = m.parent / "elsewhere"
    shutil.copytree(m / rel, target) if (m / rel).is_dir() else shutil.copy(m / rel, target)
    (shutil.rmtree if (m / rel).is_dir() else os.remove)(m / rel)
    (m / rel).symlink_to(target)


NAN = float("nan")

# (id, build(d, model) -> argv, culprit substring the error line must contain)
ROWS: list[tuple[str, Callable, str]] = [
    # --- generate: option values ---
    ("steps-0", lambda d, m: gen(d, m, "--steps", "0"), "--steps"),
    ("steps-negative", lambda d, m: gen(d, m, "--steps", "-1"), "--steps"),
    ("cfg-nan", lambda d, m: gen(d, m, "--cfg", "nan"), "--cfg"),
    ("cfg-inf", lambda d, m: gen(d, m, "--cfg", "inf"), "--cfg"),
    ("cfg-negative", lambda d, m: gen(d, m, "--cfg", "-1"), "--cfg"),
    ("slat-cfg-nan", lambda d, m: gen(d, m, "--slat-cfg", "nan"), "--slat-cfg"),
    ("seed-negative", lambda d, m: gen(d, m, "--seed", "-1"), "--seed"),
    ("seed-huge", lambda d, m: gen(d, m, "--seed", str(2**64)), "--seed"),
    ("max-frames-0", lambda d, m: gen(d, m, "--max-frames", "0"), "--max-frames"),
    ("max-frames-huge", lambda d, m: gen(d, m, "--max-frames", "100000"), "--max-frames"),
    ("stride-0", lambda d, m: gen(d, m, "--stride", "0"), "--stride"),
    ("device-nonsense", lambda d, m: gen(d, m, "--device", "nonsense"), "--device"),
    ("device-cuda-99", lambda d, m: gen(d, m, "--device", "cuda:99"), "--device"),
    ("device-tpu", lambda d, m: gen(d, m, "--device", "meta"), "--device"),
    # --- generate: paths ---
    ("input-missing", lambda d, m: gen(d, m, clip=d / "none.mp4"), "none.mp4"),
    ("output-is-file", lambda d, m: gen(d, m, out=png(d / "out.png")), "out.png"),
    ("output-under-file", lambda d, m: gen(d, m, out=png(d / "f.png") / "sub"), "f.png"),
    ("output-not-empty", lambda d, m: (png(d / "out" / "mine.png"), gen(d, m))[1], "--overwrite"),
    ("model-missing", lambda d, m: gen(d, d / "nomodel"), "nomodel"),
    ("model-no-index", lambda d, m: gen(d, Path(shutil.copytree(m / "slat_flow", d / "m"))), "model_index.json"),
    # --- media ---
    ("gif-garbage", lambda d, m: gen(d, m, clip=(d / "x.gif", (d / "x.gif").write_bytes(os.urandom(300)))[0]),
     "x.gif"),
    ("gif-truncated", lambda d, m: gen(d, m, clip=truncated(gif(d / "t.gif", T=8), 0.4)), "t.gif"),
    ("png-text", lambda d, m: gen(d, m, clip=(d / "a.png", (d / "a.png").write_text("hello"))[0]), "a.png"),
    ("mp4-garbage", lambda d, m: gen(d, m, clip=(d / "v.mp4", (d / "v.mp4").write_bytes(os.urandom(500)))[0]),
     "v.mp4"),
    ("audio-only", lambda d, m: gen(d, m, clip=audio_only(d / "a.wav")), "a.wav"),
    ("mp4-empty", lambda d, m: gen(d, m, clip=(d / "e.mp4", (d / "e.mp4").write_bytes(b""))[0]), "e.mp4"),
    ("folder-empty", lambda d, m: gen(d, m, clip=(d / "frames", (d / "frames").mkdir())[0]), "frames"),
    ("folder-junk-frame", lambda d, m: gen(d, m, clip=((d / "fr").mkdir(), (d / "fr" / "0.png").write_text("x"),
                                                       d / "fr")[2]), "0.png"),
    ("folder-mixed-sizes", lambda d, m: gen(d, m, clip=(png(d / "fs" / "0.png"), png(d / "fs" / "1.png",
                                                        size=(30, 24)), d / "fs")[2]), "different sizes"),
    ("folder-mixed-alpha", lambda d, m: gen(d, m, clip=(png(d / "fa" / "0.png"), png(d / "fa" / "1.png", "RGB"),
                                                        d / "fa")[2]), "alpha"),
    ("frames-transparent", lambda d, m: gen(d, m, clip=(png(d / "ft" / "0.png"), Image.new(
        "RGBA", (24, 24), (0, 0, 0, 0)).save(d / "ft" / "0.png"), d / "ft")[2]), "empty object mask"),
    # --- pipeline folders (checkpoints) ---
    ("index-bad-json", pipeline_folder_row(lambda m: (m / "model_index.json").write_text("{nope")),
     "model_index.json"),
    ("index-a-list", pipeline_folder_row(lambda m: (m / "model_index.json").write_text("[]")), "model_index.json"),
    ("index-foreign-class", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["components"].update(slat_flow="os.system"))), "os.system"),
    ("index-missing-component", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["components"].pop("slat_decoder"))), "slat_decoder"),
    ("component-folder-missing", pipeline_folder_row(lambda m: shutil.rmtree(m / "slat_flow")), "slat_flow"),
    ("component-symlinked-out", pipeline_folder_row(lambda m: symlink_out(m, "slat_flow")), "slat_flow"),
    ("weights-symlinked-out", pipeline_folder_row(lambda m: symlink_out(m, "slat_flow/model.safetensors")),
     "model.safetensors"),
    ("weights-truncated", pipeline_folder_row(lambda m: truncated(m / "slat_flow" / "model.safetensors")),
     "model.safetensors"),
    ("weights-hostile-header", pipeline_folder_row(lambda m: hostile_header(m / "slat_flow" / "model.safetensors")),
     "model.safetensors"),
    ("weights-garbage", pipeline_folder_row(lambda m: (m / "slat_flow" / "model.safetensors").write_bytes(
        struct.pack("<Q", 4) + b"{{{{" + b"\0" * 16)), "model.safetensors"),
    ("weights-nan", pipeline_folder_row(lambda m: edit_weights(
        m / "slat_flow" / "model.safetensors", lambda s: s[next(iter(s))].fill_(NAN))), "NaN"),
    ("weights-wrong-shapes", pipeline_folder_row(lambda m: shutil.copy(
        m / "structure_flow" / "model.safetensors", m / "slat_flow" / "model.safetensors")), "slat_flow"),
    ("config-bad-json", pipeline_folder_row(lambda m: (m / "slat_flow" / "config.json").write_text("{")),
     "config.json"),
    ("config-unknown-key", pipeline_folder_row(lambda m: edit_json(
        m / "slat_flow" / "config.json", lambda d: d.update(bogus=1))), "bogus"),
    ("config-other-class", pipeline_folder_row(lambda m: edit_json(
        m / "slat_flow" / "config.json", lambda d: d.update(_class_name="StructureFlow4D"))), "config.json"),
    ("stats-nan", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["slat_normalization"]["mean"].__setitem__(0, NAN))), "mean"),
    ("stats-std-zero", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["slat_normalization"]["std"].__setitem__(0, 0.0))), "std"),
    ("stats-wrong-count", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["slat_normalization"]["mean"].pop())), "model_index.json"),
    ("sampler-steps-negative", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["slat_sampler"].update(num_steps=-1))), "num_steps"),
    ("sampler-interval", pipeline_folder_row(lambda m: edit_json(
        m / "model_index.json", lambda d: d["structure_sampler"].update(cfg_interval=[0.9, 0.1]))), "cfg_interval"),
    # --- render ---
    ("render-npz-missing", lambda d, m: ["render", str(d / "g.npz"), "-o", str(d / "v.gif")], "g.npz"),
    ("render-npz-garbage", lambda d, m: ["render", str((d / "g.npz", (d / "g.npz").write_bytes(b"PK\3\4junk"))[0]),
                                         "-o", str(d / "v.gif")], "g.npz"),
    ("render-npz-lying-header", lambda d, m: ["render", str(npz_with_lying_header(d / "g.npz")), "-o",
                                              str(d / "v.gif")], "claims"),
    ("render-npz-foreign", lambda d, m: ["render", str((d / "g.npz", np.savez(d / "g.npz", a=np.zeros(3)))[0]),
                                         "-o", str(d / "v.gif")], "g.npz"),
    ("render-no-plys", lambda d, m: ["render", str((d / "p", (d / "p").mkdir())[0]), "-o", str(d / "v.gif")],
     ".ply"),
    ("render-ply-lying-header", lambda d, m: ["render", str(((d / "p").mkdir(), (d / "p" / "frame_0000.ply")
                                              .write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex "
                                                           b"999999999\nproperty float x\nend_header\n\0\0\0\0"),
                                              d / "p")[2]), "-o", str(d / "v.gif")], "frame_0000.ply"),
    ("render-size-0", lambda d, m: ["render", str(d), "-o", str(d / "v.gif"), "--size", "0"], "--size"),
    ("render-fps-nan", lambda d, m: ["render", str(d), "-o", str(d / "v.gif"), "--fps", "nan"], "--fps"),
    ("render-output-txt", lambda d, m: ["render", str(d), "-o", str(d / "v.txt")], "v.txt"),
    ("render-output-exists", lambda d, m: ["render", str(d), "-o", str(png(d / "v.gif", "RGB"))], "--overwrite"),
    # --- convert ---
    ("convert-missing", lambda d, m: ["convert", str(d / "ckpt.json"), "-o", str(d / "c")], "ckpt.json"),
    ("convert-output-not-empty", lambda d, m: ["convert", str((d / "k.json", (d / "k.json").write_text("{}"))[0]),
                                               "-o", str(png(d / "c" / "x.png").parent)], "--overwrite"),
    # --- train configs ---
    ("train-config-missing", lambda d, m: ["train", str(d / "none.json")], "none.json"),
    ("train-config-bad-json", lambda d, m: ["train", str((d / "c.json", (d / "c.json").write_text("{"))[0])],
     "c.json"),
    ("train-config-a-list", lambda d, m: ["train", str((d / "c.json", (d / "c.json").write_text("[]"))[0])],
     "JSON object"),
    ("train-unknown-key", lambda d, m: ["train", str(train_config(d, lambda c: c.update(epochs=3)))], "epochs"),
    ("train-missing-stage", lambda d, m: ["train", str(train_config(d, lambda c: c["stages"].pop("slat_flow")))],
     "slat_flow"),
    ("train-cond-channels", lambda d, m: ["train", str(train_config(
        d, lambda c: c["stages"]["slat_flow"]["model"].update(cond_channels=64)))], "cond_channels"),
    ("train-latent-channels", lambda d, m: ["train", str(train_config(
        d, lambda c: c["stages"]["structure_flow"]["model"].update(in_channels=4, out_channels=4)))], "in_channels"),
    ("train-slat-resolution", lambda d, m: ["train", str(train_config(
        d, lambda c: c["stages"]["slat_flow"]["model"].update(resolution=32)))], "resolution"),
    ("train-sampler-steps", lambda d, m: ["train", str(train_config(
        d, lambda c: c["slat_sampler"].update(num_steps=-1)))], "num_steps"),
    ("train-lr-negative", lambda d, m: ["train", str(train_config(
        d, lambda c: c["stages"]["slat_vae"]["train"].update(lr=-1)))], "slat_vae"),
    ("train-seed-string", lambda d, m: ["train", str(train_config(d, lambda c: c.update(seed="zero")))], "seed"),
    ("train-data-missing", lambda d, m: ["train", str(train_config(d, lambda c: c.update(data=str(d / "nodata"))))],
     "nodata"),
    ("train-init-missing", lambda d, m: ["train", str(train_config(
        d, lambda c: c["stages"]["slat_flow"].update(init={"model": str(d / "noinit")}) or
        c["stages"]["slat_flow"].pop("model")))], "noinit"),
    # --- eval ---
    ("eval-limit-0", lambda d, m: ["eval", "--model", str(m), "--data", str(d), "--limit", "0"], "--limit"),
    ("eval-steps-0", lambda d, m: ["eval", "--model", str(m), "--data", str(d), "--steps", "0"], "--steps"),
    ("eval-model-missing", lambda d, m: ["eval", "--model", str(d / "nm"), "--data", str(d)], "nm"),
    ("eval-data-missing", lambda d, m: ["eval", "--model", str(m), "--data", str(d / "nd")], "nd"),
    ("eval-out-exists", lambda d, m: ["eval", "--model", str(m), "--data", str(d), "--out",
                                      str((d / "r.json", (d / "r.json").write_text("{}"))[0])], "--overwrite"),
    ("eval-no-clips", lambda d, m: ["eval", "--model", str(m), "--data", str(d)], "clip_"),
    # --- data import ---
    ("import-no-transforms", lambda d, m: ["data", "import", str(d), "--out", str(d / "o")], "transforms.json"),
    ("import-bad-json", lambda d, m: ["data", "import", str((d / "transforms.json").write_text("{") and d),
                                      "--out", str(d / "o")], "transforms.json"),
    ("import-frames-not-list", lambda d, m: ["data", "import", str(render_folder(
        d, spec_change=lambda s: s.update(frames={"a": 1}))), "--out", str(d / "o")], "frames"),
    ("import-path-escapes", lambda d, m: ["data", "import", str(render_folder(
        d, entry_change=lambda e: e.update(file_path="../../../etc/passwd"))), "--out", str(d / "o")], "file_path"),
    ("import-path-absolute", lambda d, m: ["data", "import", str(render_folder(
        d, entry_change=lambda e: e.update(file_path="/etc/hostname"))), "--out", str(d / "o")], "file_path"),
    ("import-singular-matrix", lambda d, m: ["data", "import", str(render_folder(
        d, entry_change=lambda e: e.update(transform_matrix=np.zeros((4, 4)).tolist()))), "--out", str(d / "o")],
     "transform_matrix"),
    ("import-matrix-3x3", lambda d, m: ["data", "import", str(render_folder(
        d, entry_change=lambda e: e.update(transform_matrix=np.eye(3).tolist()))), "--out", str(d / "o")],
     "transform_matrix"),
    ("import-time-negative", lambda d, m: ["data", "import", str(render_folder(
        d, entry_change=lambda e: e.update(time=-2))), "--out", str(d / "o")], "time"),
    ("import-fov-missing", lambda d, m: ["data", "import", str(render_folder(
        d, spec_change=lambda s: s.pop("camera_angle_x"))), "--out", str(d / "o")], "camera_angle_x"),
    ("import-image-rgb", lambda d, m: ["data", "import", str((render_folder(d), png(d / "views" / "v0.png", "RGB"))
                                                             [0]), "--out", str(d / "o")], "v0.png"),
    ("import-second-source-bad", lambda d, m: ["data", "import", str(render_folder(d / "a")), str(render_folder(
        d / "b", entry_change=lambda e: e.update(file_path="../a/views/v0.png"))), "--out", str(d / "o")],
     "file_path"),
    # --- data synth ---
    ("synth-num-0", lambda d, m: ["data", "synth", "--num", "0", "--out", str(d / "o")], "--num"),
    ("synth-frames-0", lambda d, m: ["data", "synth", "--frames", "0", "--out", str(d / "o")], "--frames"),
    ("synth-size-0", lambda d, m: ["data", "synth", "--size", "0", "--out", str(d / "o")], "--size"),
    ("synth-dinov2-no-path", lambda d, m: ["data", "synth", "--features", "dinov2", "--out", str(d / "o")],
     "--dinov2"),
    ("synth-out-is-file", lambda d, m: ["data", "synth", "--out", str(png(d / "o.png"))], "o.png"),
]


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def test_the_table_is_large_and_unique():
    assert len(ROWS) >= 60 and len({r[0] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("name, build, culprit", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_exits_2_names_the_culprit_and_writes_nothing(name, build, culprit, model, tmp_path, capsys):
    if name.startswith("device-cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    d = tmp_path / "work"
    d.mkdir()
    argv = build(d, model)
    before = _snapshot(d, model)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if not line.startswith("warning:")]
    assert code == 2, err
    assert len(errors) == 2 and errors[0].startswith("error: ") and errors[1].startswith("hint: "), err
    assert culprit in errors[0], errors[0]
    assert _snapshot(d, model) == before, "a bad input wrote or changed files"


def test_a_bug_is_exit_1_not_2(monkeypatch, tmp_path, capsys):
    import ss4d.validation

    def boom(args):
        raise ValueError("an internal ValueError, not a user mistake")

    monkeypatch.setattr(ss4d.validation, "check_render", boom)
    assert main(["render", str(tmp_path), "-o", str(tmp_path / "v.gif")]) == 1
    assert "internal error" in capsys.readouterr().err


def test_read_only_output_is_refused_up_front(tmp_path, model, capsys):
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(gen(tmp_path, model, out=ro / "out")) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o755)

