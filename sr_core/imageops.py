"""Image files in and out: decode to uint8 numpy arrays, write atomically.

``read_image`` turns any file Pillow can decode into one of the three layouts
the inference core accepts (HxW grey, HxWx3 RGB, HxWx4 RGBA; see
``sr_core.pixelmodes`` for the conversion table: LA becomes RGBA, palette
becomes RGB/RGBA, CMYK becomes sRGB, 16-bit becomes 8-bit) and records every
conversion in ``ImageData.notes`` so the GUI and CLI can tell the user.

EXIF orientation is applied to the pixels and reset to 1 in the EXIF carried
to the output; the ICC profile and DPI are carried too.  Animations keep their
first frame.  ``save_image`` writes PNG, JPEG, WebP or TIFF atomically and
never overwrites the image's own source file.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import secrets
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from sr_core import pixelmodes
from sr_core.errors import (
    OutputExistsError,
    OutputTooLargeError,
    OutputWriteError,
    UnsupportedImageError,
)

log = logging.getLogger(__name__)

#: Pillow resampling filters by the names weights files and recipes use.
RESAMPLE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

#: Largest input read by default (width × height).  Bigger files are refused as
#: likely decompression bombs; Pillow's own hard limit (2 × ``MAX_IMAGE_PIXELS``,
#: about 179 MP) applies on top of this.
MAX_PIXELS = 100_000_000

#: Output extensions (lower case, with dot) → Pillow format name.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_FORMAT_MAX_SIDE = {"WEBP": 16383}  # the others hold MAX_OUTPUT_SIDE (16384)
_ORIENTATION = 0x0112
# Descriptive IFD0 tags worth carrying to the output. A TIFF's EXIF is its whole
# header (size, strips, samples, XMP, ICC…): copied into a TIFF it overrides the
# upscaled layout, and into a JPEG it can overflow the 64 KB EXIF segment.
_CARRIED_EXIF_TAGS = frozenset(
    {
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        _ORIENTATION,
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x8298,  # Copyright
        0x8769,  # Exif sub-IFD (exposure, lens, dates)
        0x8825,  # GPS sub-IFD
        *range(0x9C9B, 0x9CA0),  # Windows title, comment, author, keywords, subject
    }
)
_JPEG_EXIF_LIMIT = 65533  # Pillow refuses longer EXIF in a JPEG (one APP1 segment)
# Decoders report bad data through any of these (truncation: OSError; broken
# headers: SyntaxError/struct.error; oversized PNG text chunks: ValueError).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


@dataclass(frozen=True, eq=False)
class ImageData:
    """Decoded pixels plus the metadata to carry to the output file.

    Attributes:
        pixels: uint8 array in [0, 255]; HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA).
        icc_profile: embedded ICC profile bytes, or None (sRGB assumed).
        exif: EXIF block (orientation already reset to 1), or None.
        dpi: (x, y) dots per inch, or None when the file states none.
        source: the file the pixels came from, or None for generated images.
        format: Pillow format name of the source ("PNG", "JPEG", ...), or None.
        notes: one human-readable line per conversion done while reading.
    """

    pixels: np.ndarray
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    source: Path | None = None
    format: str | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        arr = self.pixels
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
            raise ValueError(
                f"ImageData.pixels must be a uint8 numpy array, got "
                f"{getattr(arr, 'dtype', type(arr).__name__)}"
            )
        layout_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))
        if not layout_ok or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(
                f"ImageData.pixels must be HxW, HxWx3 or HxWx4, got shape {arr.shape}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def with_pixels(self, pixels: np.ndarray) -> ImageData:
        """A copy with new pixels (e.g. the upscaled result) and the same metadata.

        Args:
            pixels: uint8, HxW / HxWx3 / HxWx4, any size.
        Raises:
            ValueError: wrong dtype or layout.
        """
        return dataclasses.replace(self, pixels=pixels)


def default_output_name(source: Path, size: tuple[int, int], ext: str) -> str:
    """Suggested output file name: ``<stem>_<W>x<H>.<ext>``.

    Args:
        source: the input file (only its stem is used).
        size: output (width, height).
        ext: extension with or without the dot, e.g. "png" or ".jpg".
    """
    w, h = size
    return f"{Path(source).stem}_{w}x{h}.{ext.lstrip('.').lower()}"


def read_image(
    path: str | os.PathLike[str], max_pixels: int | None = None
) -> ImageData:
    """Decode an image file completely into a uint8 array.

    Args:
        path: any file Pillow can read (PNG, JPEG, WebP, TIFF, GIF, BMP, ...).
        max_pixels: refuse images with more pixels than this (width × height);
            None means the module's ``MAX_PIXELS``.
    Returns:
        ``ImageData`` whose ``pixels`` are uint8 in [0, 255], HxW (grey),
        HxWx3 (RGB) or HxWx4 (RGBA), upright per EXIF; ``notes`` lists the
        conversions made.
    Raises:
        UnsupportedImageError: missing file, folder, empty, not an image,
            corrupt or truncated, too many pixels, or an unusable mode.  The
            message names the file.
    """
    p = Path(path)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    _check_readable(p)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below is the guard; Pillow's warning
            # threshold (89.5 MP) is lower than our default limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                return _decode(img, p, limit)
    except Image.DecompressionBombError as exc:
        raise UnsupportedImageError(
            f"{p} is too large to open safely ({exc}). Downscale it with another "
            "program first."
        ) from exc
    except Image.UnidentifiedImageError as exc:
        raise UnsupportedImageError(
            f"{p} is not an image file Upscaler can read (unknown or damaged format)."
        ) from exc
    except _DECODE_ERRORS as exc:
        raise UnsupportedImageError(
            f"{p} could not be decoded; it may be truncated or corrupt ({exc})."
        ) from exc


def _check_readable(p: Path) -> None:
    if not p.exists():
        raise UnsupportedImageError(f"{p} does not exist.")
    if p.is_dir():
        raise UnsupportedImageError(f"{p} is a folder, not an image file.")
    if not os.access(p, os.R_OK):
        raise UnsupportedImageError(f"{p} cannot be read (permission denied).")
    if p.stat().st_size == 0:
        raise UnsupportedImageError(f"{p} is empty (0 bytes).")


def _decode(img: Image.Image, p: Path, max_pixels: int) -> ImageData:
    w, h = img.size
    if w * h > max_pixels:
        raise UnsupportedImageError(
            f"{p} is {w}×{h} ({w * h / 1e6:.1f} MP), over the {max_pixels / 1e6:g} MP "
            "limit for one image (possible decompression bomb). Downscale or crop it "
            "with another program first."
        )
    if w < 1 or h < 1:
        raise UnsupportedImageError(f"{p} has no pixels ({w}×{h}).")
    notes: list[str] = []
    fmt = img.format
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        img.seek(0)
        notes.append(f"Animated image ({frames} frames): only the first frame is used.")
    if pixelmodes.has_16bit_channels(img) and not img.mode.startswith("I;16"):
        notes.append(f"16-bit {img.mode} channels reduced to 8 bits.")
    orientation = _orientation(img)
    img.load()
    icc = img.info.get("icc_profile") or None
    dpi = _read_dpi(img.info.get("dpi"))
    upright, exif_bytes = _apply_orientation(img, orientation, notes)
    converted, icc = pixelmodes.to_working_mode(upright, icc, notes)
    pixels = np.array(converted, dtype=np.uint8, copy=True)
    icc = pixelmodes.fitting_icc(icc, pixels.ndim == 2, notes)
    for note in notes:
        log.info("%s: %s", p.name, note)
    return ImageData(
        pixels=pixels,
        icc_profile=icc,
        exif=exif_bytes,
        dpi=dpi,
        source=p,
        format=fmt,
        notes=tuple(notes),
    )


def _orientation(img: Image.Image) -> int:
    # Read before load(): the TIFF decoder applies the orientation itself.
    try:
        value = img.getexif().get(_ORIENTATION, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def _apply_orientation(
    img: Image.Image, orientation: int, notes: list[str]
) -> tuple[Image.Image, bytes | None]:
    """Upright image and the EXIF to carry (orientation reset to 1).

    Broken EXIF never makes a readable image unreadable: it is dropped with a
    note instead.
    """
    try:
        exif = img.getexif()
        upright = ImageOps.exif_transpose(img)
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        for tag in [t for t in exif if t not in _CARRIED_EXIF_TAGS]:
            del exif[tag]
        exif_bytes = exif.tobytes() if len(exif) else None
    except _DECODE_ERRORS as exc:
        log.warning("Unreadable EXIF (%s); orientation and EXIF ignored", exc)
        notes.append("EXIF metadata is damaged: ignored, not copied to the output.")
        return img, None
    if orientation in range(2, 9):
        notes.append(f"Rotated/flipped upright per EXIF orientation {orientation}.")
    return upright, exif_bytes


def _read_dpi(value: object) -> tuple[float, float] | None:
    if not isinstance(value, tuple) or len(value) != 2:
        return None
    try:
        x, y = (round(float(v), 2) for v in value)
    except (TypeError, ValueError):
        return None
    # 1×1 is what Pillow reports for TIFFs without a resolution unit: no real DPI.
    return (x, y) if x > 1 and y > 1 else None


def check_savable(path: str | os.PathLike[str], size: tuple[int, int]) -> str:
    """The Pillow format for ``path``'s extension, if it can hold a ``size``
    (width, height) image; callers check before a long upscale.

    Raises:
        OutputWriteError: unknown extension, or too large for the format.
    """
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise OutputWriteError(
            f"Cannot write {p}: unknown extension {p.suffix or '(none)'!r}. Use one "
            f"of {', '.join(sorted(SAVE_FORMATS))}."
        )
    limit = _FORMAT_MAX_SIDE.get(fmt)
    if limit is not None and max(size) > limit:
        raise OutputTooLargeError(
            f"Cannot write {p}: {fmt} holds at most {limit} px a side and this image "
            f"is {size[0]}×{size[1]}. Choose PNG or TIFF, or a smaller size."
        )
    return fmt


def save_image(
    image: ImageData,
    path: str | os.PathLike[str],
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` to ``path`` atomically, carrying ICC, EXIF and DPI.

    The format comes from the extension (.png, .jpg/.jpeg, .webp, .tif/.tiff,
    any case).  JPEG cannot hold alpha: RGBA is composited on white (with a
    logged warning); grey stays grey.  WebP stores grey as RGB and is lossless
    at quality 100.  The file is
    written to a hidden temporary file in the same folder and renamed over the
    target, so a failure or Ctrl-C never leaves a partial file.

    Args:
        image: pixels (uint8 HxW / HxWx3 / HxWx4) and metadata.
        path: output file.
        quality: 1–100, used for JPEG and WebP (100 = lossless WebP).
        overwrite: replace an existing file (never the image's own source).
    Returns:
        The path written.
    Raises:
        OutputExistsError: the file exists and ``overwrite`` is False, or it is
            the source the image was read from.
        OutputWriteError: unknown extension, missing or read-only folder, full
            disk, or the encoder failed.
        ValueError: ``quality`` outside 1–100.
    """
    p = Path(path)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    fmt = check_savable(p, image.size)
    _check_target(image, p, overwrite)
    pil, kwargs = _prepare(image, fmt, quality)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.part")
    try:
        # os.open with 0o666 lets the umask decide the final permissions, unlike
        # tempfile.mkstemp's 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            pil.save(fh, format=fmt, **kwargs)
            fh.flush()
            os.fsync(fh.fileno())
        if not overwrite and p.exists():
            raise OutputExistsError(f"{p} appeared while writing; not overwritten.")
        os.replace(tmp, p)
    except OSError as exc:
        raise OutputWriteError(_write_error_message(p, exc)) from exc
    except ValueError as exc:
        raise OutputWriteError(f"Could not encode {p} as {fmt}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("Saved %s (%d×%d %s)", p, *image.size, fmt)
    return p


def _check_target(image: ImageData, p: Path, overwrite: bool) -> None:
    src = image.source
    same = src is not None and (_samefile(src, p) or src.resolve() == p.resolve())
    if same:
        raise OutputExistsError(
            f"Refusing to overwrite the source image {p}. Choose another output name "
            "or folder."
        )
    if p.is_dir():
        raise OutputWriteError(f"Cannot write {p}: it is a folder. Give a file name.")
    if p.exists() and not overwrite:
        raise OutputExistsError(
            f"{p} already exists. Choose another name, or allow overwriting "
            "(--overwrite)."
        )
    if not p.parent.is_dir():
        raise OutputWriteError(
            f"Cannot write {p}: the folder {p.parent} does not exist. Create it or "
            "choose another folder."
        )


def _samefile(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _write_error_message(p: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"Disk full while writing {p}. Free some space or choose another folder."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"Cannot write to {p.parent} (permission denied or read-only). Choose "
            "another output folder."
        )
    return f"Could not write {p}: {exc.strerror or exc}."


def _exif_for(exif: bytes | None, fmt: str) -> bytes | None:
    """The carried EXIF as ``fmt`` can store it, or None."""
    if not exif:
        return None
    if fmt == "TIFF":
        # libtiff cannot write the Exif/GPS sub-IFD pointers: keep IFD0 only.
        ifd0 = Image.Exif()
        ifd0.load(exif)
        for tag in (0x8769, 0x8825):
            ifd0.pop(tag, None)
        return ifd0.tobytes() if len(ifd0) else None
    if fmt == "JPEG" and len(exif) > _JPEG_EXIF_LIMIT:
        log.warning("EXIF is too large for JPEG (%d bytes); not copied.", len(exif))
        return None
    return exif


def _prepare(
    image: ImageData, fmt: str, quality: int
) -> tuple[Image.Image, dict[str, object]]:
    """Pillow image and encoder options for ``fmt``."""
    pil = Image.fromarray(np.ascontiguousarray(image.pixels))
    if fmt == "JPEG" and pil.mode == "RGBA":
        name = image.source.name if image.source else "image"
        log.warning("%s: JPEG has no transparency; alpha composited on white.", name)
        white = Image.new("RGBA", pil.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, pil).convert("RGB")
    if fmt == "WEBP" and pil.mode == "L":
        pil = pil.convert("RGB")
    kwargs: dict[str, object] = {}
    icc = pixelmodes.fitting_icc(image.icc_profile, pil.mode == "L", [])
    if icc:
        kwargs["icc_profile"] = icc
    exif = _exif_for(image.exif, fmt)
    if exif:
        kwargs["exif"] = exif
    if image.dpi and fmt != "WEBP":
        kwargs["dpi"] = image.dpi
    if fmt == "JPEG":
        # 4:4:4 at high quality: chroma subsampling would blur the detail we add.
        kwargs.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        lossless = quality == 100
        kwargs.update(quality=quality, method=4, lossless=lossless, exact=lossless)
    elif fmt == "TIFF":
        kwargs["compression"] = "tiff_lzw"
    return pil, kwargs
