"""viewer.html in real headless Chromium (Playwright, the system's Chromium; skipped when either is missing).

The renderer is compared with ss4d's own rasteriser on the same dequantised Gaussians at the same camera:
the mean absolute difference per channel must stay under ``MAD_BOUND`` (0.01, i.e. 2.5 of 255 levels; measured
about 0.0005: 8-bit blending in the browser against float compositing). Set ``SS4D_VIEWER_SCREENSHOT=PATH`` to
save a screenshot of the page (the README's image comes from here).
"""

import base64
import io
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ss4d.export.structure import load_structure, save_structure
from ss4d.render.camera import Camera, orbit_view
from ss4d.render.preview import render_voxels
from ss4d.render.rasterize import project_gaussians, rasterize
from ss4d.viewer import decode_frame, decode_voxels, read_viewer_html, viewer_from_folder

MAD_BOUND = 0.01
CHROMIUM_FLAGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # software WebGL2, no GPU needed
SIZE = 160


def _chromium() -> str | None:
    if os.environ.get("SS4D_CHROMIUM"):
        return os.environ["SS4D_CHROMIUM"] if Path(os.environ["SS4D_CHROMIUM"]).is_file() else None
    names = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
    return next((p for p in map(shutil.which, names) if p), None)


def _skip(reason: str) -> None:
    if os.environ.get("SS4D_REQUIRE_BROWSER"):  # .ci/run sets it: there the browser test must run
        pytest.fail(f"SS4D_REQUIRE_BROWSER is set but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright import sync_api as playwright_api
except ImportError:
    _skip("playwright is not installed (pip install playwright; it is in the dev extra)")
if _chromium() is None:
    _skip("no Chromium found (apt-get install chromium-headless-shell, or set SS4D_CHROMIUM to its path)")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """The shipped ss4d-tiny on 4 frames of an example clip, 2 steps, saved and viewed like `generate --viewer`."""
    from ss4d.data import load_clip
    from ss4d.pipelines import SS4DPipeline
    from ss4d.pipelines.presets import shipped_tiny_path

    clip_path = Path(__file__).parents[2] / "examples" / "clips" / "synth_100012.gif"
    folder = tmp_path_factory.mktemp("synth_100012", numbered=False)
    clip = load_clip(clip_path, max_frames=4)
    out = SS4DPipeline.from_pretrained(shipped_tiny_path())(clip, num_inference_steps=2, progress=False)
    out.save(folder, preview=False)
    save_structure(folder / "structure.npz", out.coords, out.resolution, out.images, clip.fps)
    viewer_from_folder(folder)
    return folder, out


@pytest.fixture(scope="module")
def page(result):
    folder, _ = result
    errors: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        pg = browser.new_page(viewport={"width": 1000, "height": 520})
        pg.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        pg.goto((folder / "viewer.html").as_uri())
        pg.evaluate("ss4dViewer.ready")
        pg.errors = errors
        yield pg
        browser.close()


def _camera(azimuth: float = 30.0) -> Camera:
    return Camera.from_fov(orbit_view(2.0, math.radians(azimuth), math.radians(20)), 40.0, SIZE, SIZE)


def _shot(page, frame: int, camera: Camera, mode: str = "gaussians") -> np.ndarray:
    from PIL import Image

    cam = {"viewmat": camera.viewmat.flatten().tolist(), "fx": camera.fx, "fy": camera.fy, "cx": camera.cx,
           "cy": camera.cy}  # fmt: skip
    page.evaluate("([c, f, m, s]) => { ss4dViewer.pause(); ss4dViewer.setSize(s, s); ss4dViewer.setMode(m); "
                  "ss4dViewer.setCamera(c); ss4dViewer.setFrame(f); }", [cam, frame, mode, SIZE])  # fmt: skip
    png = base64.b64decode(page.evaluate("ss4dViewer.snapshot()").split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255


def test_first_frame_matches_ss4d_rasteriser_and_scrubbing_changes_it(result, page):
    folder, out = result
    meta, blob = read_viewer_html((folder / "viewer.html").read_text())
    cam = _camera()
    shot = _shot(page, 0, cam)
    assert shot.shape == (SIZE, SIZE, 3)
    assert (shot.min(-1) < 0.9).mean() > 0.02  # not blank: the object covers part of the canvas
    ref = rasterize(project_gaussians(**decode_frame(meta["frames"][0], blob).torch(), camera=cam), SIZE, SIZE,
                    background=torch.ones(3)).color.clamp(0, 1).numpy()  # fmt: skip
    assert np.abs(shot - ref).mean() < MAD_BOUND
    last = _shot(page, 3, cam)
    assert np.abs(last - shot).mean() > 0.003  # the object moves between frames 0 and 3
    ref_last = rasterize(project_gaussians(**decode_frame(meta["frames"][3], blob).torch(), camera=cam), SIZE, SIZE,
                         background=torch.ones(3)).color.clamp(0, 1).numpy()  # fmt: skip
    assert np.abs(last - ref_last).mean() < MAD_BOUND
    assert page.evaluate("ss4dViewer.frame") == 3 and page.errors == []


def test_voxel_mode_matches_ss4d_voxel_preview(result, page):
    folder, out = result
    meta, blob = read_viewer_html((folder / "viewer.html").read_text())
    cam = _camera(-60.0)
    shot = _shot(page, 1, cam, mode="voxels")
    coords = torch.from_numpy(decode_voxels(meta["voxels"][1], blob)).int()
    torch.testing.assert_close(coords, out.coords[1].int())
    ref = render_voxels(coords, meta["resolution"], cam).clamp(0, 1).numpy()
    assert np.abs(shot - ref).mean() < MAD_BOUND and (shot.min(-1) < 0.9).mean() > 0.02
    assert page.errors == []


def test_mouse_orbits_zooms_and_play_advances(result, page):
    folder, _ = result
    page.evaluate("ss4dViewer.setSize(); ss4dViewer.setMode('gaussians'); "
                  "ss4dViewer.setCamera({radius: 2, azimuth: -45, elevation: 20})")  # fmt: skip
    box = page.locator("#ss4d-canvas").bounding_box()
    before = page.locator("#ss4d-canvas").screenshot()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 30, steps=4)
    page.mouse.up()
    assert page.locator("#ss4d-canvas").screenshot() != before
    zoomed_out = page.locator("#ss4d-canvas").screenshot()
    page.mouse.wheel(0, -400)  # zoom in
    assert page.locator("#ss4d-canvas").screenshot() != zoomed_out
    page.evaluate("ss4dViewer.setFrame(0); ss4dViewer.play()")
    page.wait_for_function("ss4dViewer.frame > 0", timeout=5000)  # clip fps: 4 frames play in well under 5 s
    page.evaluate("ss4dViewer.pause()")
    assert page.evaluate("document.getElementById('ss4d-input').naturalWidth") > 0  # the input frame is shown
    assert load_structure(folder / "structure.npz").fps == page.evaluate("ss4dViewer.fps")
    if os.environ.get("SS4D_VIEWER_SCREENSHOT"):
        page.evaluate("ss4dViewer.setCamera({radius: 1.6, azimuth: -30, elevation: 20}); ss4dViewer.setFrame(2)")
        page.screenshot(path=os.environ["SS4D_VIEWER_SCREENSHOT"])
    assert page.errors == []
