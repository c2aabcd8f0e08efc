"""Conversions between numpy image arrays and QImage (always deep copies)."""

from __future__ import annotations

import numpy as np
from PyQt5.QtGui import QImage

_FORMATS = {
    1: QImage.Format_Grayscale8,
    3: QImage.Format_RGB888,
    4: QImage.Format_RGBA8888,
}


def to_qimage(pixels: np.ndarray) -> QImage:
    """HxW, HxWx3 or HxWx4 uint8 array → an independent QImage."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in _FORMATS:
        raise ValueError(f"unsupported channel count {channels}")
    arr = np.ascontiguousarray(pixels)
    h, w = arr.shape[:2]
    image = QImage(arr.data, w, h, arr.strides[0], _FORMATS[channels])
    # QImage borrows the buffer; copy so it outlives the array.
    return image.copy()


def to_numpy(image: QImage) -> np.ndarray:
    """QImage → HxWx3 (opaque) or HxWx4 (with alpha) uint8 array (a copy)."""
    if image.isNull():
        raise ValueError("null image")
    has_alpha = image.hasAlphaChannel()
    fmt = QImage.Format_RGBA8888 if has_alpha else QImage.Format_RGB888
    converted = image.convertToFormat(fmt)
    channels = 4 if has_alpha else 3
    w, h = converted.width(), converted.height()
    ptr = converted.constBits()
    ptr.setsize(converted.bytesPerLine() * h)
    rows = np.frombuffer(ptr, np.uint8).reshape(h, converted.bytesPerLine())
    # Scan lines are padded to 4 bytes; drop the padding.
    return rows[:, : w * channels].reshape(h, w, channels).copy()
