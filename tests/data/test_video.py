import pytest
import torch

from ss4d.data import load_clip, write_video
from ss4d.errors import InputError


def test_mp4_round_trip_and_fps_resampling(tmp_path):
    pytest.importorskip("av", reason="PyAV not installed (pip install 'ss4d[video]')")
    frames = torch.zeros(12, 3, 32, 48)
    for t in range(12):
        frames[t, 0, :, t * 4 : t * 4 + 8] = 1.0  # a red bar moving right
    path = write_video(frames, tmp_path / "v.mp4", fps=12.0)
    assert path.suffix == ".mp4"
    clip = load_clip(path)
    assert clip.frames.shape == (12, 3, 32, 48) and clip.fps == pytest.approx(12.0)
    assert float((clip.frames - frames).abs().mean()) < 0.05  # lossy codec, same content
    half = load_clip(path, fps=6.0, max_frames=4)
    assert half.num_frames == 4 and half.fps == pytest.approx(6.0)


def test_gif_written_when_asked(tmp_path):
    path = write_video(torch.rand(3, 3, 8, 8), tmp_path / "v.gif", fps=5.0)
    assert load_clip(path).num_frames == 3


def test_bad_options():
    with pytest.raises(ValueError, match="stride"):
        load_clip(torch.rand(2, 3, 4, 4), stride=0)
    with pytest.raises(ValueError, match="fps"):
        load_clip(torch.rand(2, 3, 4, 4), fps=-1.0)
    with pytest.raises((InputError, TypeError), match="unsupported|source"):
        load_clip(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        load_clip([])
