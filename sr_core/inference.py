"""Whole-image upscaling: size policy, resize, tiled model calls, stitching.

The model refines an image that was first resized to the output size with the
filter it was trained with (stored in the weights), as fastai's ``predict``
does.  Work is cut into overlapping tiles so any output size runs in bounded
memory; ``iter_upscale`` yields after every tile, which is where callers can
show progress or cancel.  An optional geometric self-ensemble runs the model
on flipped/rotated copies of each tile and averages the results (EDSR's "+"):
better detail for a few times the work.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import psutil
import torch
from PIL import Image

from sr_core.errors import DeviceMemoryError, UnsupportedImageError
from sr_core.imageops import RESAMPLE_FILTERS
from sr_core.model import SRModel
from sr_core.tiling import Stitcher, plan_tiles

log = logging.getLogger(__name__)

MAX_OUTPUT_SIDE = 16384
MAX_OUTPUT_PIXELS = 160_000_000
# Peak bytes per output pixel of a whole-image pass: benchmarks/speed.py measured
# about 1.1 KB (bf16) and 2.0 KB (fp32) above the loaded model; budgeted high.
_BYTES_PER_PIXEL = {"fp32": 3200, "bf16": 2000, "fp16": 2000}
_CPU_TILE_CAP = 512  # ~1 s a tile on a laptop CPU, so cancel stays responsive
_GPU_TILE_CAP = 2048
_MIN_TILE = 64
# (horizontal flip, quarter turns) per ensemble pass; the first four keep the
# tile's shape, so 2 and 4 passes never transpose.
_VIEWS = (
    (False, 0),
    (True, 0),
    (False, 2),
    (True, 2),
    (False, 1),
    (True, 1),
    (False, 3),
    (True, 3),
)
ENSEMBLE_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Target:
    """What size to produce.  Build with ``auto()``, ``longest(n)``, ``scale(f)``
    or ``exact(w, h)``."""

    kind: str = "auto"
    value: float = 0.0
    width: int = 0
    height: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "longest", "scale", "exact"):
            raise ValueError(f"Unknown target kind {self.kind!r}")
        if self.kind in ("longest", "scale") and not self.value > 0:
            raise ValueError(f"{self.kind} target needs a positive value")
        if self.kind == "exact" and not (self.width > 0 and self.height > 0):
            raise ValueError("exact target needs positive width and height")

    @classmethod
    def auto(cls) -> Target:
        return cls("auto")

    @classmethod
    def longest(cls, side: int) -> Target:
        return cls("longest", value=float(side))

    @classmethod
    def scale(cls, factor: float) -> Target:
        return cls("scale", value=float(factor))

    @classmethod
    def exact(cls, width: int, height: int) -> Target:
        return cls("exact", width=int(width), height=int(height))

    def __str__(self) -> str:
        if self.kind == "longest":
            return f"{int(self.value)} px"
        if self.kind == "scale":
            return f"×{self.value:g}"
        if self.kind == "exact":
            return f"{self.width}×{self.height}"
        return "Auto"


@dataclass(frozen=True)
class UpscaleOptions:
    """How to run: target size, tile size (None = from free memory), overlap,
    and ``ensemble``: model passes per tile over flipped/rotated copies (1 = off;
    8 gave +0.07 dB PSNR-Y at x4 on the 50 valid photos, for 8 passes' time)."""

    target: Target = Target()
    tile: int | None = None
    overlap: int | None = None
    ensemble: int = 1

    def __post_init__(self) -> None:
        if self.ensemble not in ENSEMBLE_SIZES:
            raise ValueError(f"ensemble must be one of {ENSEMBLE_SIZES}")
        if self.tile is not None and (self.tile < _MIN_TILE or self.tile % 32):
            raise ValueError(f"tile must be a multiple of 32 and ≥ {_MIN_TILE}")
        if self.overlap is not None and self.overlap < 0:
            raise ValueError("overlap must be ≥ 0")
        if (
            self.tile is not None
            and self.overlap is not None
            and (self.overlap * 2 >= self.tile)
        ):
            raise ValueError("overlap must be less than half the tile")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` model passes finished (tiles × ensemble passes)."""

    done: int
    total: int


def available_memory(device: str | torch.device = "cpu") -> int:
    """Bytes free for work on ``device`` (CUDA: free VRAM; else available RAM)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    return int(psutil.virtual_memory().available)


def auto_longest_side(device: str | torch.device = "cpu") -> int:
    """The seed notebook's rule: 1280 px when a CUDA GPU has > 8 GB free, else
    1024.  On CPU (and MPS, which shares RAM) the same threshold applies to
    available RAM, doubled (16 GB), since RAM also holds everything else."""
    dev = torch.device(device)
    free = available_memory(dev)
    threshold = 8e9 if dev.type == "cuda" else 16e9
    return 1280 if free > threshold else 1024


def output_size(
    size: tuple[int, int], target: Target, model: SRModel | None = None
) -> tuple[int, int]:
    """Output (width, height) for an input of ``size`` = (width, height).

    Aspect ratio is kept (rounded to whole pixels) except for exact targets.

    Raises:
        UnsupportedImageError: the result would be empty or beyond the limits.
    """
    w, h = size
    if w < 1 or h < 1:
        raise UnsupportedImageError(f"Image has no pixels ({w}×{h})")
    if target.kind == "exact":
        out = (target.width, target.height)
    else:
        if target.kind == "scale":
            factor = target.value
        else:
            side = (
                target.value
                if target.kind == "longest"
                else auto_longest_side(model.device if model else "cpu")
            )
            factor = side / max(w, h)
        out = (max(1, round(w * factor)), max(1, round(h * factor)))
    if max(out) > MAX_OUTPUT_SIDE or out[0] * out[1] > MAX_OUTPUT_PIXELS:
        raise UnsupportedImageError(
            f"Output {out[0]}×{out[1]} is too large (limits: {MAX_OUTPUT_SIDE} px a "
            f"side, {MAX_OUTPUT_PIXELS // 1_000_000} MP). Choose a smaller size."
        )
    return out


def choose_tile(model: SRModel, out_w: int, out_h: int) -> int:
    """Largest tile (multiple of 32) whose estimated peak memory fits in half the
    free memory, capped so one tile takes about a second on a CPU."""
    budget = available_memory(model.device) * 0.5
    per_px = _BYTES_PER_PIXEL.get(model.precision, 3200)
    side = int(math.sqrt(budget / per_px)) // 32 * 32
    cap = _CPU_TILE_CAP if model.device.startswith("cpu") else _GPU_TILE_CAP
    tile = max(_MIN_TILE, min(side, cap))
    if side < _MIN_TILE:
        raise DeviceMemoryError(
            f"Not enough free memory on {model.device} for even a {_MIN_TILE}px tile "
            f"(about {available_memory(model.device) / 1e9:.1f} GB free). Close other "
            "programs or use a smaller size."
        )
    return tile


def _split_channels(
    pixels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """HxW / HxWx1 / HxWx3 / HxWx4 uint8 → (RGB, alpha or None, was_grey)."""
    if pixels.dtype != np.uint8:
        raise UnsupportedImageError(f"Expected uint8 pixels, got {pixels.dtype}")
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 1):
        grey = pixels.reshape(pixels.shape[0], pixels.shape[1])
        return np.repeat(grey[..., None], 3, axis=2), None, True
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        alpha = pixels[..., 3] if pixels.shape[2] == 4 else None
        return pixels[..., :3], alpha, False
    raise UnsupportedImageError(
        f"Expected an HxW, HxWx3 or HxWx4 image array, got shape {pixels.shape}"
    )


def _resize(arr: np.ndarray, size: tuple[int, int], filt: str) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(arr))
    if img.size == size:
        return np.asarray(img)
    return np.asarray(
        img.resize(size, RESAMPLE_FILTERS.get(filt, Image.Resampling.BICUBIC))
    )


# How each backend words a failed allocation: CUDA raises torch.OutOfMemoryError,
# but the CPU allocator ("DefaultCPUAllocator: can't allocate memory") and MPS
# ("MPS backend out of memory") raise a plain RuntimeError.
_OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory")


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(
        words in str(exc).lower() for words in _OOM_WORDS
    )


@contextmanager
def _whole_image_memory(device: str, out_w: int, out_h: int) -> Iterator[None]:
    """Full-size buffers (resize, stitching) failing to allocate: a clear error."""
    try:
        yield
    except MemoryError as exc:
        raise DeviceMemoryError(
            f"Not enough memory for a {out_w}x{out_h} output on {device}. Choose a "
            "smaller output size or close other programs."
        ) from exc


def _run_view(model: SRModel, tile: np.ndarray, flip: bool, turns: int) -> np.ndarray:
    """The model's output for a flipped/rotated copy of ``tile``, mapped back."""
    view = np.rot90(tile[:, ::-1] if flip else tile, turns)
    out = np.rot90(model.run_tile(view), -turns)
    return out[:, ::-1] if flip else out


def iter_upscale(
    pixels: np.ndarray, model: SRModel, options: UpscaleOptions | None = None
) -> Generator[Progress, None, np.ndarray]:
    """Upscale ``pixels``, yielding ``Progress`` after each tile.

    Args:
        pixels: HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) uint8.
        model: from ``load_model``.
        options: target size and tiling.
    Yields:
        ``Progress(0, n)`` first, then one ``Progress(i, n)`` per model pass
        (n = tiles × ``options.ensemble``). Stop iterating (``close()``) to
        cancel; at most one pass over one tile follows.
    Returns:
        The output, same channel layout as ``pixels``, uint8, at ``output_size``.
    Raises:
        UnsupportedImageError: bad array, or output beyond the size limits.
        DeviceMemoryError: out of device memory even at the smallest tile.
    """
    options = options or UpscaleOptions()
    rgb, alpha, grey = _split_channels(pixels)
    translucent = alpha is not None and int(alpha.min()) < 255
    if translucent:
        # Premultiplied, as Pillow resizes RGBA: the colour under clear pixels
        # must not bleed into soft edges as a dark or coloured fringe.
        rgb = ((rgb.astype(np.uint16) * alpha[..., None] + 127) // 255).astype(np.uint8)
    in_h, in_w = rgb.shape[:2]
    out_w, out_h = output_size((in_w, in_h), options.target, model)
    whole_image = partial(_whole_image_memory, model.device, out_w, out_h)
    with whole_image():
        resized = _resize(rgb, (out_w, out_h), model.info.resize_filter)
    tile = options.tile or choose_tile(model, out_w, out_h)
    overlap = options.overlap if options.overlap is not None else 32
    overlap = min(overlap, tile // 2 - 1)
    while True:
        tiles = plan_tiles(out_h, out_w, tile, overlap)
        with whole_image():
            stitcher = Stitcher(out_h, out_w, 3, tiles)
        passes = options.ensemble
        total = len(tiles) * passes
        yield Progress(0, total)
        try:
            done = 0
            for t in tiles:
                acc = np.zeros((t.y1 - t.y0, t.x1 - t.x0, 3), np.float32)
                for flip, turns in _VIEWS[:passes]:
                    acc += _run_view(model, resized[t.slices], flip, turns)
                    done += 1
                    yield Progress(done, total)
                stitcher.add(t, acc / passes)
            break
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
            del stitcher  # its buffers are remade at the next tile size
            if model.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if tile // 2 < _MIN_TILE:
                advice = (
                    "close other programs"
                    if model.device.startswith("cpu")
                    else "close other GPU programs, or use the CPU"
                )
                raise DeviceMemoryError(
                    f"Out of memory on {model.device} even with {tile}px tiles. "
                    f"Choose a smaller output size, {advice}."
                ) from exc
            tile = max(_MIN_TILE, tile // 2 // 32 * 32)
            overlap = min(overlap, tile // 4)
            log.warning(
                "Out of memory on %s; retrying with %dpx tiles", model.device, tile
            )
    with whole_image():
        return _finish(stitcher, alpha, translucent, grey, (out_w, out_h))


def _finish(
    stitcher: Stitcher,
    alpha: np.ndarray | None,
    translucent: bool,
    grey: bool,
    size: tuple[int, int],
) -> np.ndarray:
    """The stitched float RGB as uint8 in the input's channel layout."""
    result = stitcher.result()
    big_alpha = None if alpha is None else _resize(alpha, size, "bicubic")
    if translucent:
        coverage = big_alpha.astype(np.float32)[..., None] / 255.0
        result = np.divide(
            result, coverage, out=np.zeros_like(result), where=coverage > 0
        )
    out = np.clip(result * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if grey:
        return np.asarray(Image.fromarray(out).convert("L"))
    if big_alpha is not None:
        return np.dstack([out, big_alpha])
    return out


def upscale(
    pixels: np.ndarray,
    model: SRModel,
    options: UpscaleOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Blocking form of ``iter_upscale``; ``progress(done, total)`` per tile."""
    gen = iter_upscale(pixels, model, options)
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(step.done, step.total)
