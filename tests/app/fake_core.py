"""A tiny stand-in for ``sr_core`` with the names in docs/core-api.md.

Nearest-neighbour "model", Pillow file I/O, an optional delay per tile so tests
can cancel mid-run.  The error classes are the real ``sr_core.errors``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from sr_core import errors
from sr_core.imageops import check_savable


@dataclass(frozen=True)
class Target:
    kind: str = "auto"
    value: float = 0.0

    @classmethod
    def auto(cls):
        return cls("auto")

    @classmethod
    def longest(cls, side):
        return cls("longest", float(side))

    @classmethod
    def scale(cls, factor):
        return cls("scale", float(factor))


@dataclass(frozen=True)
class UpscaleOptions:
    target: Target = Target()
    tile: int | None = None
    overlap: int | None = None
    ensemble: int = 1


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class ImageData:
    pixels: np.ndarray
    source: Path | None = None
    format: str = "PNG"
    notes: tuple = field(default_factory=tuple)

    def with_pixels(self, arr):
        return replace(self, pixels=arr)


@dataclass
class FakeModel:
    name: str = "fake-nearest"
    created: str = "2024-01-01"
    device: str = "cpu"
    precision: str = "fp32"
    path: str = "fake.safetensors"
    info: object = None

    def description(self):
        return f"{self.name} · {self.device} · {self.precision}"


class FakeCore:
    """Instance-level knobs: ``tiles``, ``delay``, ``finish_delay``,
    ``missing_weights``; weights
    files named ``mismatched*`` fail to load."""

    errors = errors
    Target = Target
    UpscaleOptions = UpscaleOptions
    Progress = Progress
    ImageData = ImageData

    def __init__(self, tiles=4, delay=0.0, missing_weights=False):
        self.tiles, self.delay, self.missing_weights = tiles, delay, missing_weights
        self.closed = 0
        self.finish_delay = 0.0  # after the last step, as stitching takes
        self.allocator_tuned = False
        self.memory_released = 0

    def load_model(self, path=None, device="auto", precision="auto", threads=None):
        if self.missing_weights:
            raise errors.WeightsNotFoundError(
                "No weights found. Train and export some."
            )
        if path is not None and Path(path).name.startswith("mismatched"):
            raise errors.WeightsMismatchError(f"{path} is for another model.")
        if path is not None and Path(path).name.startswith("deleted"):
            raise errors.WeightsNotFoundError(f"Weights file not found: {path}")
        if device == "cuda":  # this machine has no GPU, as in sr_core.model
            raise ValueError("CUDA was requested but no CUDA GPU is available")
        return FakeModel(device="cpu" if device == "auto" else device)

    def keep_freed_memory(self):
        self.allocator_tuned = True
        return True

    def release_free_memory(self):
        self.memory_released += 1

    def auto_longest_side(self, device="cpu"):
        return 1024

    check_savable = staticmethod(check_savable)  # pure: the real one

    def output_size(self, size, target, model=None):
        w, h = size
        if target.kind == "scale":
            f = target.value
        else:
            side = (
                target.value if target.kind == "longest" else self.auto_longest_side()
            )
            f = side / max(w, h)
        return max(1, round(w * f)), max(1, round(h * f))

    def iter_upscale(self, pixels, model, options=None):
        options = options or UpscaleOptions()
        h, w = pixels.shape[:2]
        ow, oh = self.output_size((w, h), options.target, model)
        total = self.tiles * options.ensemble  # one step per tile and pass
        try:
            yield Progress(0, total)
            for i in range(total):
                time.sleep(self.delay)
                yield Progress(i + 1, total)
        except GeneratorExit:
            self.closed += 1
            raise
        time.sleep(self.finish_delay)
        ys = np.arange(oh) * h // oh
        xs = np.arange(ow) * w // ow
        return pixels[ys][:, xs].copy()

    def read_image(self, path):
        path = Path(path)
        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise errors.UnsupportedImageError(f"{path.name} is not an image.") from exc
        return ImageData(arr, source=path)

    def save_image(self, image, path, quality=95, overwrite=False):
        path = Path(path)
        if image.source is not None and path.resolve() == Path(image.source).resolve():
            raise errors.OutputExistsError(f"{path} is the input; never overwritten.")
        if path.exists() and not overwrite:
            raise errors.OutputExistsError(f"{path} exists.")
        tmp = path.with_name(path.name + ".tmp")
        fmt = {
            ".jpg": "JPEG",
            ".jpeg": "JPEG",
            ".png": "PNG",
            ".webp": "WEBP",
            ".tif": "TIFF",
            ".tiff": "TIFF",
        }.get(path.suffix.lower())
        if fmt is None:
            raise errors.OutputWriteError(f"Unknown extension {path.suffix}")
        try:
            Image.fromarray(image.pixels).save(tmp, fmt)
            os.replace(tmp, path)
        except OSError as exc:
            raise errors.OutputWriteError(f"Could not write {path}: {exc}") from exc
        return path
