"""Low-resolution inputs made from HR images, as SR benchmarks make them.

The standard protocol: crop the HR image at the top left to a multiple of the
scale, downscale it with an antialiased bicubic filter (Pillow's ``BICUBIC``
widens its kernel when shrinking, like MATLAB ``imresize``), and optionally
JPEG-compress the result (fastai's lesson-7 notebook saved its inputs at JPEG
quality 60).  Pillow and numpy only, so data pipelines can share it.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

__all__ = ["DEGRADATIONS", "crop_to_multiple", "make_lr", "parse_degrade"]

DEGRADATIONS = ("none", "jpeg60")
"""Names offered on command lines; ``parse_degrade`` also takes any ``jpegNN``."""

_JPEG = re.compile(r"jpeg(\d{1,3})")


def parse_degrade(name: str | None) -> int | None:
    """Turn a degradation name into a JPEG quality (``None``: no degradation).

    Args:
        name: ``None``, ``"none"``, or ``"jpegNN"`` with NN in 1..100.

    Returns:
        The JPEG quality, or ``None`` for no degradation.

    Raises:
        ValueError: unknown name or quality out of range.
    """
    if name is None or name == "none":
        return None
    match = _JPEG.fullmatch(name)
    if match is None or not 1 <= int(match.group(1)) <= 100:
        raise ValueError(
            f"Unknown degradation {name!r}: use 'none' or 'jpegNN' with a JPEG "
            "quality NN from 1 to 100 (e.g. 'jpeg60')."
        )
    return int(match.group(1))


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop at the top left so height and width are multiples of ``scale``.

    Args:
        img: HxW or HxWxC array.
        scale: integer scale factor >= 1.

    Returns:
        A view of ``img`` of shape (H - H % scale, W - W % scale, ...).

    Raises:
        ValueError: ``scale`` < 1, or the image is smaller than ``scale``.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}.")
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"A {w}x{h} image is smaller than the scale {scale}.")
    return img[: h - h % scale, : w - w % scale]


def make_lr(hr: np.ndarray, scale: int, degrade: str | None = None) -> np.ndarray:
    """Downscale an HR image by ``scale`` (bicubic, antialiased), then degrade it.

    Args:
        hr: HxWx3 (RGB) or HxW (grey) ``uint8``; H and W must be multiples of
            ``scale`` (see ``crop_to_multiple``).
        scale: integer factor >= 1.
        degrade: ``None``/``"none"``, or ``"jpegNN"``: encode and decode the LR
            image as JPEG at quality NN (Pillow, 4:2:0 chroma subsampling).

    Returns:
        (H/scale)x(W/scale)[x3] ``uint8`` array, same channel layout as ``hr``.

    Raises:
        ValueError: wrong dtype/shape, sizes not multiples of ``scale``, or an
            unknown degradation.
    """
    quality = parse_degrade(degrade)
    arr = np.asarray(hr)
    if arr.dtype != np.uint8 or not (
        arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)
    ):
        raise ValueError(
            f"make_lr needs an HxW or HxWx3 uint8 image, got {arr.dtype} {arr.shape}."
        )
    h, w = arr.shape[:2]
    if scale < 1 or h % scale or w % scale:
        raise ValueError(
            f"HR size {w}x{h} is not a multiple of the scale {scale}; "
            "crop it first with crop_to_multiple()."
        )
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((w // scale, h // scale), Image.Resampling.BICUBIC)
    if quality is not None:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality, subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as decoded:
            img = decoded.convert(img.mode)
    return np.asarray(img).copy()
