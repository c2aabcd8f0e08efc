"""Pixel-mode normalisation: any Pillow mode → L, RGB or RGBA, 8 bits a channel.

Used by ``sr_core.imageops.read_image``.  Every function appends one
human-readable line to ``notes`` per conversion it makes.

============================  =================  ==============================
Input mode                    Result             Note
============================  =================  ==============================
L, RGB, RGBA                  unchanged          -
L, RGB with a tRNS colour     RGBA               "transparent colour ... RGBA"
1 (bilevel)                   L                  "1-bit ... greyscale"
I;16 (16-bit grey)            L, value >> 8      "reduced to 8 bits"
I (32-bit grey)               L: 0–255 kept,     "converted/reduced/stretched"
                              ≤ 65535 >> 8,
                              else stretched
F (float grey)                L: 0–1 × 255,      "converted/stretched"
                              else stretched
LA, La, PA, RGBa              RGBA               "converted to RGBA"
P (palette)                   RGB, or RGBA with  "converted to RGB/RGBA"
                              transparency
CMYK                          RGB (sRGB via the  "using its ICC profile" or
                              embedded ICC)      "without a colour profile"
YCbCr, LAB, HSV, RGBX, ...    RGB                "converted to RGB"
============================  =================  ==============================

16-bit RGB(A) PNG/TIFF files are already reduced to their high byte by Pillow's
decoder; ``has_16bit_channels`` detects them so the caller can add a note.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageCms

from sr_core.errors import UnsupportedImageError

log = logging.getLogger(__name__)

_ICC_SPACES = {b"RGB ": "RGB", b"GRAY": "GRAY", b"CMYK": "CMYK"}


def has_16bit_channels(img: Image.Image) -> bool:
    for tile in img.tile:
        args = tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def to_working_mode(
    img: Image.Image, icc: bytes | None, notes: list[str]
) -> tuple[Image.Image, bytes | None]:
    """Convert ``img`` to L, RGB or RGBA; returns the image and the ICC to keep."""
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" in img.info:
        # One colour marked transparent (PNG tRNS, as optimisers write it).
        notes.append(f"{mode} image with a transparent colour converted to RGBA.")
        return img.convert("RGBA"), icc
    if mode in ("L", "RGB", "RGBA"):
        return img, icc
    if mode == "1":
        notes.append("1-bit black-and-white converted to 8-bit greyscale.")
        return img.convert("L"), icc
    if mode.startswith("I") or mode == "F":
        return high_depth_to_l(img, notes), icc
    if mode == "CMYK":
        return cmyk_to_rgb(img, icc, notes)
    if mode == "P":
        has_alpha = "transparency" in img.info or img.palette.mode == "RGBA"
        target = "RGBA" if has_alpha else "RGB"
        extra = " with transparency" if has_alpha else ""
        notes.append(f"Palette image{extra} converted to {target}.")
        return img.convert(target), icc
    if mode == "LA":
        notes.append("Greyscale with alpha (LA) converted to RGBA.")
        return img.convert("RGBA"), icc
    target = "RGBA" if mode in ("PA", "La", "RGBa") else "RGB"
    try:
        converted = img.convert(target)
    except ValueError as exc:
        raise UnsupportedImageError(
            f"Image mode {mode} is not supported ({exc}). Convert the file to RGB "
            "PNG or JPEG with another program."
        ) from exc
    notes.append(f"{mode} image converted to {target}.")
    return converted, icc


def high_depth_to_l(img: Image.Image, notes: list[str]) -> Image.Image:
    """16-bit, 32-bit integer or float greyscale → 8-bit, scaled not clipped."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        out = (arr.astype(np.uint16) >> 8).astype(np.uint8)
        notes.append("16-bit greyscale reduced to 8 bits.")
    elif img.mode == "F":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if lo >= 0.0 and hi <= 1.0:
            out = np.rint(np.nan_to_num(arr) * 255.0).astype(np.uint8)
            notes.append("Floating-point greyscale (0–1) converted to 8 bits.")
        else:
            out = stretch(np.nan_to_num(arr.astype(np.float64)), lo, hi)
            notes.append(
                f"Floating-point greyscale ({lo:g}–{hi:g}) stretched to 8 bits."
            )
    else:
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 255:
            out = arr.astype(np.uint8)
            notes.append("32-bit greyscale with 8-bit values converted to 8 bits.")
        elif lo >= 0 and hi <= 65535:
            # 16-bit data in a 32-bit container (older Pillow, some TIFFs).
            out = (arr.astype(np.uint32) >> 8).astype(np.uint8)
            notes.append("16-bit greyscale reduced to 8 bits.")
        else:
            out = stretch(arr.astype(np.float64), lo, hi)
            notes.append(f"32-bit greyscale ({lo}–{hi}) stretched to 8 bits.")
    return Image.fromarray(np.ascontiguousarray(out), mode="L")


def stretch(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.rint((arr - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def cmyk_to_rgb(
    img: Image.Image, icc: bytes | None, notes: list[str]
) -> tuple[Image.Image, bytes | None]:
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            rgb = ImageCms.profileToProfile(img, src, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            log.warning(
                "CMYK ICC conversion failed (%s); using a plain conversion", exc
            )
        else:
            if rgb is not None:
                notes.append("CMYK converted to sRGB using its embedded ICC profile.")
                return rgb, None
    notes.append("CMYK converted to RGB without a colour profile (colours may shift).")
    return img.convert("RGB"), None


def icc_space(icc: bytes) -> str | None:
    return _ICC_SPACES.get(icc[16:20]) if len(icc) >= 20 else None


def fitting_icc(icc: bytes | None, grey: bool, notes: list[str]) -> bytes | None:
    """Drop an ICC profile whose colour space no longer fits the pixels."""
    if not icc:
        return None
    space = icc_space(icc)
    wanted = "GRAY" if grey else "RGB"
    if space is not None and space != wanted:
        notes.append(
            f"Embedded {space} colour profile dropped: pixels are now {wanted}."
        )
        return None
    return icc
