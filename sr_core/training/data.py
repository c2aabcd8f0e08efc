"""HR image folders → (degraded input, HR target) crop pairs, made on the fly.

Every random draw for a sample comes from a generator seeded with
(seed, epoch, index), so a run resumed mid-epoch sees exactly the samples it
would have seen, whatever the worker count.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset, Sampler

from sr_core.imageops import RESAMPLE_FILTERS
from sr_core.training.config import Degradation

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
FILTERS = RESAMPLE_FILTERS


class DataError(ValueError):
    """No usable images, or a folder that does not exist."""


@dataclass(frozen=True)
class ImageFolder:
    """Usable image paths under a folder, plus the files that were skipped."""

    paths: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]


def scan_images(root: str | Path, min_side: int = 32) -> ImageFolder:
    """Find readable images under ``root`` (recursive), reporting unusable ones.

    Raises:
        DataError: the folder is missing or has no usable image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Image folder not found: {root}")
    paths, skipped = [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with Image.open(p) as im:
                im.verify()
            with Image.open(p) as im:
                w, h = im.size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            skipped.append((p, f"unreadable: {exc}"))
            continue
        if min(w, h) < min_side:
            skipped.append((p, f"too small ({w}x{h}, need {min_side} px a side)"))
            continue
        paths.append(p)
    for p, why in skipped:
        log.warning("Skipping %s: %s", p, why)
    if not paths:
        raise DataError(f"No usable images in {root} ({len(skipped)} skipped)")
    return ImageFolder(tuple(paths), tuple(skipped))


def split_folder(
    folder: ImageFolder, valid_pct: float = 0.1, seed: int = 42
) -> tuple[ImageFolder, ImageFolder]:
    """Seeded random train/valid split (fastai's ``split_by_rand_pct``)."""
    n = len(folder.paths)
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, int(n * valid_pct)) if n > 1 else 0
    valid = tuple(folder.paths[i] for i in sorted(order[:n_valid]))
    train = tuple(folder.paths[i] for i in sorted(order[n_valid:]))
    return ImageFolder(train, folder.skipped), ImageFolder(valid, ())


def _draw_scale(degr: Degradation, rng: np.random.Generator) -> float:
    whole = degr.integer_scales or range(
        math.ceil(degr.scale_min), math.floor(degr.scale_max) + 1
    )
    # No extra draw when the option is off: older recipes keep their samples.
    if degr.integer_scale_prob > 0 and whole and rng.random() < degr.integer_scale_prob:
        return float(whole[int(rng.integers(len(whole)))])
    return float(rng.uniform(degr.scale_min, degr.scale_max))


def degrade(
    hr: Image.Image, degr: Degradation, rng: np.random.Generator
) -> Image.Image:
    """Make the model input for an HR crop: same size, degraded (see Degradation)."""
    w, h = hr.size
    img = hr
    if rng.random() < degr.blur_prob:
        img = img.filter(
            ImageFilter.GaussianBlur(float(rng.uniform(*degr.blur_radius)))
        )
    scale = _draw_scale(degr, rng)
    # Resize by exactly `scale` both ways, as the benchmarks and the app do: an LR
    # of round(w / scale) px would make x3 on a 256-px crop an x3.01. The LR covers
    # a little more than the crop, so the crop is mirror-padded to that size first.
    lw, lh = max(1, math.ceil(w / scale)), max(1, math.ceil(h / scale))
    cover_w, cover_h = lw * scale, lh * scale
    pad_w, pad_h = math.ceil(cover_w) - w, math.ceil(cover_h) - h
    if pad_w or pad_h:
        arr = np.pad(np.asarray(img), ((0, pad_h), (0, pad_w), (0, 0)), "symmetric")
        img = Image.fromarray(arr)
    down = FILTERS[degr.down_filters[int(rng.integers(len(degr.down_filters)))]]
    img = img.resize((lw, lh), down, box=(0, 0, cover_w, cover_h))
    if rng.random() < degr.noise_prob:
        arr = np.asarray(img, dtype=np.float32)
        arr = arr + rng.normal(0.0, rng.uniform(*degr.noise_sigma), arr.shape)
        img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < degr.jpeg_prob:
        q = int(rng.integers(degr.jpeg_quality[0], degr.jpeg_quality[1] + 1))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    return img.resize((w, h), FILTERS[degr.up_filter], box=(0, 0, w / scale, h / scale))


def _random_crop(img: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    if w < size or h < size:
        # Small images (some T91 files): reflect-pad rather than upsample the target.
        arr = np.asarray(img)
        pad_h, pad_w = max(0, size - h), max(0, size - w)
        arr = np.pad(arr, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        img = Image.fromarray(arr)
        w, h = img.size
    x = int(rng.integers(0, w - size + 1))
    y = int(rng.integers(0, h - size + 1))
    return img.crop((x, y, x + size, y + size))


def _dihedral(img: Image.Image, k: int) -> Image.Image:
    if k & 4:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for _ in range(k & 3):
        img = img.transpose(Image.Transpose.ROTATE_90)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB → float tensor (3, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


class PairDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random (train) or centred (valid) crops with their degraded inputs.

    Items are ``(x, y)``: float tensors (3, crop, crop) in [0, 1]; x is the
    degraded input already resized to the crop size.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        crop: int,
        degradation: Degradation,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.paths = list(paths)
        self.crop = crop
        self.degradation = degradation
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        # Validation draws ignore the epoch: the same crops every time.
        epoch = self.epoch if self.train else -1
        return np.random.default_rng([self.seed, epoch + 1, index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self._rng(index)
        for attempt in range(len(self.paths)):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                with Image.open(path) as im:
                    img = im.convert("RGB")
                break
            except (OSError, ValueError) as exc:
                log.warning("Skipping unreadable %s: %s", path, exc)
        else:
            raise DataError("No image in the dataset could be read")
        if self.train:
            hr = _dihedral(_random_crop(img, self.crop, rng), int(rng.integers(8)))
        else:
            hr = _center_crop(img, self.crop)
        lr = degrade(hr, self.degradation, rng)
        return to_tensor(lr), to_tensor(hr)


def _center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if w < size or h < size:
        return _random_crop(img, size, np.random.default_rng(0))
    x, y = (w - size) // 2, (h - size) // 2
    return img.crop((x, y, x + size, y + size))


class EpochSampler(Sampler[int]):
    """Seeded per-epoch permutation, sharded over ranks, resumable mid-epoch.

    Each rank takes every ``world``-th index; ``start`` skips samples this rank
    has already consumed in the epoch (for resume).
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def per_rank(self) -> int:
        return math.ceil(self.n / self.world)

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        # Pad so every rank gets the same count (DistributedSampler does the same).
        total = self.per_rank() * self.world
        order = np.concatenate([order, order[: total - self.n]])
        mine = order[self.rank :: self.world]
        return iter(int(i) for i in mine[self.start :])

    def __len__(self) -> int:
        return self.per_rank() - self.start
