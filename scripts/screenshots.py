"""Render the app's main states to PNG files under docs/screenshots/.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py
    xvfb-run -a python scripts/screenshots.py --screen   # plus a real X11 window

With ``--weights FILE`` the real model runs.  Without it (no trained weights yet)
a clearly named demo model stands in: Lanczos resize + unsharp mask, so the
compare views show a visible difference.  Everything else is the real app.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PyQt5.QtCore import QSettings  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402

import sr_core  # noqa: E402
from app.__main__ import build_window, create_app, parse_args  # noqa: E402
from app.settings import AppSettings  # noqa: E402


class _DemoModel:
    name, created, device, precision, path = "demo (no weights)", "", "cpu", "fp32", ""
    info = None

    def description(self) -> str:
        return "demo model (Lanczos + sharpen) · cpu"


class _DemoCore:
    """sr_core with a stand-in model; tiles are simulated so progress shows.
    Everything else (file I/O, sizes, memory hooks) is the real core."""

    def __init__(self, tile_delay: float) -> None:
        self._delay = tile_delay

    def __getattr__(self, name):
        return getattr(sr_core, name)

    def load_model(self, path=None, device="auto", **_kw):
        return _DemoModel()

    def iter_upscale(self, pixels, model, options):
        h, w = pixels.shape[:2]
        size = sr_core.output_size((w, h), options.target)
        total = 12
        yield sr_core.Progress(0, total)
        for i in range(total):
            time.sleep(self._delay)
            yield sr_core.Progress(i + 1, total)
        big = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)
        return np.asarray(big.filter(ImageFilter.UnsharpMask(2, 120, 2)))


def make_sample(path: Path, size=(160, 104)) -> Path:
    """A small synthetic photo: sky, sun, hills, a house and some text."""
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=(int(90 + 120 * t), int(150 + 70 * t), 235))
    draw.ellipse([118, 10, 146, 38], fill=(255, 214, 90))
    draw.polygon(
        [(0, 80), (50, 52), (100, 78), (160, 56), (160, 104), (0, 104)],
        fill=(70, 140, 80),
    )
    draw.rectangle([28, 62, 64, 90], fill=(200, 90, 70))
    draw.polygon([(24, 64), (46, 46), (68, 64)], fill=(120, 60, 50))
    draw.rectangle([40, 74, 50, 90], fill=(90, 60, 40))
    draw.text((80, 86), "Upscaler", fill=(255, 255, 255))
    img.save(path)
    return path


def pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_for(app: QApplication, condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("state never reached")
        pump(app, 0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument(
        "--input",
        type=Path,
        help="a photo to show (shrunk to 200 px) instead of the synthetic sample",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--screen", action="store_true", help="also grab the whole (X11/Xvfb) screen"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / ".work"
    tmp.mkdir(exist_ok=True)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp / "settings"))
    app = create_app(sys.argv[:1])
    core = None if args.weights else _DemoCore(tile_delay=0.15)
    shots: list[Path] = []

    def shot(window, name: str) -> None:
        pump(app, 0.3)
        path = args.out / name
        window.grab().save(str(path), "PNG")
        shots.append(path)

    # 1. Empty, before any weights exist: the real core says how to get them.
    window = build_window(
        AppSettings(), parse_args(["--weights", str(tmp / "none.safetensors")])
    )
    window.resize(1000, 640)
    window.show()
    wait_for(app, lambda: window.controller.model_state != "loading")
    shot(window, "01-empty-no-weights.png")
    window.close()

    # 2-4. With a model: input, predicting, split compare.
    weights = ["--weights", str(args.weights)] if args.weights else []
    window = build_window(AppSettings(), parse_args(weights), core=core)
    window.resize(1000, 640)
    window.show()
    wait_for(app, lambda: window.controller.model_state == "ready")
    window.options.set_size_key("x4")
    if args.input:
        photo = Image.open(args.input).convert("RGB")
        photo.thumbnail((200, 200), Image.Resampling.BICUBIC)
        sample = tmp / f"{args.input.stem}.png"
        photo.save(sample)
    else:
        sample = make_sample(tmp / "landscape.png")
    window.open_paths([sample])
    shot(window, "02-input.png")
    window.options.submit_button.click()
    wait_for(
        app,
        lambda: window.options.progress.value() >= 5 or not window.controller.busy,
        timeout=300,
    )
    if window.controller.busy:
        shot(window, "03-predicting.png")
    wait_for(app, lambda: not window.controller.busy, timeout=300)
    window.view_bar.mode_buttons["split"].click()
    window.compare.slider.setValue(300)
    pump(app, 0.2)
    window.compare.left.zoom_by(2.0 / window.compare.left.zoom())
    window.compare.left.centerOn(250, 250)
    shot(window, "04-split.png")
    window.view_bar.mode_buttons["side"].click()
    shot(window, "05-side-by-side.png")
    if args.screen:
        pump(app, 0.5)
        path = args.out / "06-xvfb-screen.png"
        app.primaryScreen().grabWindow(0).save(str(path), "PNG")
        shots.append(path)
    window.close()
    shutil.rmtree(tmp, ignore_errors=True)
    for path in shots:
        print(f"{path}  {path.stat().st_size // 1024} KB")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
