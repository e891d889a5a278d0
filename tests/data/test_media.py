"""Media read right: high bit depth, palettes, animated formats, alpha consistency, lazy decoding, frame cap."""

import numpy as np
import pytest
import torch
from PIL import Image

from ss4d.data import load_clip
from ss4d.data.media import DEFAULT_FRAME_CAP, select_frames
from ss4d.errors import MediaError, NonFiniteError


def _frames(T=5, size=16, alpha=True):
    out = []
    for t in range(T):
        a = np.zeros((size, size, 4), np.uint8)
        a[..., 0] = 40 * t
        a[..., 1] = 200
        a[..., 3] = 255
        a[2 + t : 8 + t, 4:10, 3] = 128 if alpha else 255
        out.append(Image.fromarray(a, "RGBA") if alpha else Image.fromarray(a[..., :3], "RGB"))
    return out


def test_16_bit_grey_png_keeps_its_brightness(tmp_path):
    """Pillow's convert("RGB") clips 16-bit values at 255: mid-grey came out almost white."""
    a = np.full((8, 8), 32768, np.uint16)
    a[:4] = 8192
    Image.fromarray(a).save(tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode.startswith("I")
    f = load_clip(tmp_path / "g.png").frames
    assert f.shape == (1, 3, 8, 8)
    torch.testing.assert_close(f[0, :, 4:], torch.full((3, 4, 8), 128 / 255), atol=1 / 255, rtol=0)
    torch.testing.assert_close(f[0, :, :4], torch.full((3, 4, 8), 32 / 255), atol=1 / 255, rtol=0)


def test_palette_image_with_transparency_goes_through_its_palette(tmp_path):
    im = Image.new("P", (6, 6), 0)
    im.putpalette([10, 20, 30, 250, 100, 50] + [0] * 762)
    im.paste(1, (2, 2, 4, 4))
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    f = load_clip(tmp_path / "p.png").frames[0]
    assert f.shape[0] == 4 and float(f[3, 0, 0]) == 0.0 and float(f[3, 3, 3]) == 1.0
    torch.testing.assert_close(f[:3, 3, 3], torch.tensor([250, 100, 50]) / 255.0)


@pytest.mark.parametrize("suffix, kwargs", [(".webp", {"lossless": True}), (".png", {}), (".tiff", {})])
def test_animated_files_are_clips(tmp_path, suffix, kwargs):
    frames = _frames()
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, **kwargs)
    clip = load_clip(path)
    assert clip.num_frames == 5 and clip.has_alpha
    expected = torch.from_numpy(np.stack([np.asarray(f) for f in frames])).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(clip.frames, expected, atol=2 / 255, rtol=0)
    assert load_clip(path, stride=2).num_frames == 3 and load_clip(path, max_frames=2).num_frames == 2


def test_mixed_alpha_in_a_folder_is_refused_with_the_fix(tmp_path):
    rgba, rgb = _frames(2), _frames(2, alpha=False)
    rgba[0].save(tmp_path / "0.png")
    rgb[1].save(tmp_path / "1.png")
    with pytest.raises(MediaError, match=r"0.png has an alpha channel but 1.png does not.*RGBA"):
        load_clip(tmp_path)
    with pytest.raises(MediaError, match="alpha"):
        load_clip([rgba[0], rgb[1]])


def test_decoding_is_lazy_and_stops_at_the_last_kept_frame():
    seen = []

    def frames():
        for i in range(1000):
            seen.append(i)
            yield np.zeros((2, 2, 3), np.uint8)

    kept = select_frames(frames(), stride=3, max_frames=4)
    assert len(kept) == 4 and max(seen) <= 3 * 3 + 1


def test_long_clips_are_capped_with_a_warning_unless_max_frames_is_given():
    long = torch.rand(DEFAULT_FRAME_CAP + 5, 3, 4, 4)
    with pytest.warns(UserWarning, match="--max-frames"):
        assert load_clip(long).num_frames == DEFAULT_FRAME_CAP
    assert load_clip(long, max_frames=DEFAULT_FRAME_CAP + 5).num_frames == DEFAULT_FRAME_CAP + 5


def test_nan_in_a_clip_tensor_is_refused():
    x = torch.rand(2, 3, 4, 4)
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="clip tensor"):
        load_clip(x)
