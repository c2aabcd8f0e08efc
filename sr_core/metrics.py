"""Image-quality metrics as the super-resolution literature reports them.

PSNR and SSIM are computed on the luma (Y) channel of BT.601 YCbCr, in the
[16, 235] studio range that MATLAB's ``rgb2ycbcr`` produces, after cropping
``border`` pixels (usually the scale factor) from every side.  SSIM follows
Wang et al. 2004: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, L = 255, and only the positions where the window fits entirely
inside the image ("valid" filtering), averaged over the map.

Y is kept in float64 and not rounded to integers (MATLAB rounds when the input
is ``uint8``; common Python ports do not).  The difference is below 0.01 dB.

numpy only, so the training loop and the benchmark can share it without torch.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psnr_y", "rgb_to_y", "ssim_y"]

PEAK = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# BT.601 RGB [0, 255] -> Y [16, 235]: MATLAB rgb2ycbcr's first row, divided by 255.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0
_Y_OFFSET = 16.0


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Convert an RGB image to BT.601 luma, as MATLAB ``rgb2ycbcr`` (Y only).

    Args:
        img: HxWx3 RGB, ``uint8`` or float in [0, 255]; or HxW greyscale, which is
            taken as Y already and returned as float64 unchanged in value.

    Returns:
        HxW float64 Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, in [16, 235]
        for inputs in [0, 255].  Not rounded.

    Raises:
        ValueError: not HxW or HxWx3.
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr.astype(np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"Expected an HxW or HxWx3 image, got shape {arr.shape}. "
            "Drop the alpha channel first."
        )
    return arr.astype(np.float64) @ _Y_WEIGHTS + _Y_OFFSET


def _prepare(
    a: np.ndarray, b: np.ndarray, border: int
) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, convert both images to Y and crop ``border`` from each side."""
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"Images differ in shape: {a_arr.shape} vs {b_arr.shape}.")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}.")
    ya, yb = rgb_to_y(a_arr), rgb_to_y(b_arr)
    if border:
        ya = ya[border:-border, border:-border]
        yb = yb[border:-border, border:-border]
    if ya.size == 0:
        raise ValueError(
            f"Nothing left after cropping {border} px from a {a_arr.shape[:2]} image."
        )
    return ya, yb


def psnr_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Peak signal-to-noise ratio on the Y channel, peak 255.

    Args:
        a, b: images of the same shape: HxWx3 RGB or HxW grey, ``uint8`` or float
            in [0, 255].
        border: pixels cropped from each side before comparing (the SR protocol
            uses the scale factor).

    Returns:
        PSNR in dB; ``inf`` when the cropped Y channels are identical.

    Raises:
        ValueError: shapes differ, are not HxW/HxWx3, or the crop leaves nothing.
    """
    ya, yb = _prepare(a, b, border)
    mse = float(np.mean((ya - yb) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(PEAK * PEAK / mse)


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1-D Gaussian taps, normalised to sum 1 (its outer product is MATLAB's
    ``fspecial('gaussian', size, sigma)``)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering keeping only positions where the window fits.

    The window is symmetric, so correlation and convolution agree.
    """
    n = taps.size
    h, w = img.shape
    rows = np.zeros((h - n + 1, w), dtype=np.float64)
    for i, t in enumerate(taps):
        rows += t * img[i : i + h - n + 1, :]
    out = np.zeros((h - n + 1, w - n + 1), dtype=np.float64)
    for j, t in enumerate(taps):
        out += t * rows[:, j : j + w - n + 1]
    return out


def ssim_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Structural similarity (Wang et al. 2004) on the Y channel.

    Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, "valid"
    filtering (no padding), mean of the SSIM map: the reference MATLAB
    ``ssim_index`` and BasicSR's ``calculate_ssim`` protocol.

    Args:
        a, b: images of the same shape: HxWx3 RGB or HxW grey, ``uint8`` or float
            in [0, 255].
        border: pixels cropped from each side before comparing.

    Returns:
        Mean SSIM, a float in [-1, 1]; exactly 1.0 for identical inputs.

    Raises:
        ValueError: shapes differ or are not HxW/HxWx3, or the cropped image is
            smaller than the 11x11 window.
    """
    ya, yb = _prepare(a, b, border)
    if min(ya.shape) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} px after cropping "
            f"{border} px per side; got {ya.shape[1]}x{ya.shape[0]}."
        )
    c1 = (SSIM_K1 * PEAK) ** 2
    c2 = (SSIM_K2 * PEAK) ** 2
    taps = _gaussian_window()
    mu_a = _filter_valid(ya, taps)
    mu_b = _filter_valid(yb, taps)
    var_a = _filter_valid(ya * ya, taps) - mu_a * mu_a
    var_b = _filter_valid(yb * yb, taps) - mu_b * mu_b
    cov = _filter_valid(ya * yb, taps) - mu_a * mu_b
    num = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))
