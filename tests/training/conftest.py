"""Tiny data and recipes for the training tests (resnet18, 32-64 px crops)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sr_core.training.config import Recipe, load_recipe
from sr_core.training.loop import RunSettings

TINY_RECIPE = """\
name = "tiny"
loss = "l1"
pretrained = false

[degradation]
scale_min = 2.0
scale_max = 3.0
down_filters = ["bicubic", "bilinear"]
jpeg_prob = 0.5
jpeg_quality = [50, 90]
noise_prob = 0.3
blur_prob = 0.3

[[stages]]
name = "s32"
crop = 32
batch_size = 2
epochs = 2
lr = 1e-3
pct_start = 0.3

[[stages]]
name = "s64"
crop = 64
batch_size = 2
epochs = 1
lr = "slice(1e-4, 1e-3)"
"""


def make_images(folder: Path, n: int, size: tuple[int, int] = (100, 80)) -> Path:
    """``n`` PNGs of ``size`` (w, h): gradients plus a few flat rectangles."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        base = np.stack(
            [(xx * (i + 2)) % 256, (yy * 3 + 40 * i) % 256, ((xx + yy) * 2) % 256], -1
        ).astype(np.uint8)
        img = Image.fromarray(base)
        draw = ImageDraw.Draw(img)
        for _ in range(5):
            x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
            x1, y1 = x0 + int(rng.integers(4, 30)), y0 + int(rng.integers(4, 30))
            draw.rectangle(
                [x0, y0, x1, y1], fill=tuple(rng.integers(0, 256, 3).tolist())
            )
        img.save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="session")
def make_image_dir() -> Callable[..., Path]:
    """``make_image_dir(folder, n, size=(w, h))``: write test PNGs."""
    return make_images


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_images(tmp_path_factory.mktemp("train"), 4)


@pytest.fixture(scope="session")
def valid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_images(tmp_path_factory.mktemp("valid"), 1)


@pytest.fixture(scope="session")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.toml"
    path.write_text(TINY_RECIPE)
    return path


@pytest.fixture(scope="session")
def recipe(recipe_file: Path) -> Recipe:
    return load_recipe(recipe_file)


SettingsFactory = Callable[..., RunSettings]


@pytest.fixture(scope="session")
def make_settings(train_dir: Path, valid_dir: Path) -> SettingsFactory:
    """``make_settings(out, **overrides)``: tiny, deterministic CPU settings."""

    def make(out: Path, **kw: object) -> RunSettings:
        base: dict[str, object] = {
            "train_dir": str(train_dir),
            "valid_dir": str(valid_dir),
            "out_dir": str(out),
            "encoder": "resnet18",
            "workers": 0,
            "device": "cpu",
            "precision": "fp32",
            "progress": False,
            "valid_crop": 64,
        }
        base.update(kw)
        return RunSettings(**base)  # type: ignore[arg-type]

    return make
