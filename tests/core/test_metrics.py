"""PSNR-Y / SSIM-Y against values worked out by hand from their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr_core.metrics import _gaussian_window, psnr_y, rgb_to_y, ssim_y

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def test_rgb_to_y_bt601_corners() -> None:
    img = np.array(
        [[[0, 0, 0], [255, 255, 255]], [[255, 0, 0], [0, 0, 255]]], dtype=np.uint8
    )
    y = rgb_to_y(img)
    assert y.dtype == np.float64
    assert y.shape == (2, 2)
    np.testing.assert_allclose(y[0], [16.0, 235.0])
    np.testing.assert_allclose(y[1], [16 + 65.481, 16 + 24.966])


def test_rgb_to_y_float_equals_uint8_and_grey_passes_through() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_y(img), rgb_to_y(img.astype(np.float32)))
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_y(grey), grey.astype(np.float64))


def test_rgb_to_y_rejects_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        rgb_to_y(np.zeros((4, 4, 4), np.uint8))


def test_psnr_constant_grey_known_mse() -> None:
    a = np.full((8, 8), 100, np.uint8)
    b = np.full((8, 8), 110, np.uint8)  # MSE = 100
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)


def test_psnr_rgb_black_vs_white() -> None:
    # Y: 16 vs 235, so every pixel differs by 219.
    a = np.zeros((6, 6, 3), np.uint8)
    b = np.full((6, 6, 3), 255, np.uint8)
    assert psnr_y(a, b) == pytest.approx(20 * math.log10(255 / 219), abs=1e-12)


def test_psnr_border_crops_the_difference_away() -> None:
    a = np.full((10, 10), 50.0)
    b = a.copy()
    b[0, :] = 60.0  # only the first row differs
    assert math.isinf(psnr_y(a, b, border=1))
    # Without the crop: MSE = 10 * 100 / 100 = 10.
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 10), abs=1e-12)


def test_identical_images_psnr_inf_ssim_one() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    assert math.isinf(psnr_y(img, img, border=2))
    assert ssim_y(img, img, border=2) == 1.0


def test_gaussian_window_is_fspecial() -> None:
    g = _gaussian_window()
    assert g.shape == (11,)
    assert g.sum() == pytest.approx(1.0, abs=1e-15)
    raw = [math.exp(-(x * x) / (2 * 1.5**2)) for x in range(-5, 6)]
    np.testing.assert_allclose(g, np.array(raw) / sum(raw), rtol=1e-14)
    # fspecial('gaussian', 11, 1.5) peaks at 0.0707622 (1 / 3.759263**2).
    assert g[5] ** 2 == pytest.approx(0.0707622, abs=1e-7)


def test_ssim_constant_images_is_luminance_term() -> None:
    # Variances and covariance are zero, so SSIM = (2 ma mb + C1) / (ma² + mb² + C1).
    a = np.full((11, 11), 100.0)
    b = np.full((11, 11), 110.0)
    expected = (2 * 100 * 110 + C1) / (100**2 + 110**2 + C1)
    assert ssim_y(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_one_window_by_hand() -> None:
    # 11x11 gives exactly one window position; check against the formula with
    # weighted means/variances summed pixel by pixel.
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (11, 11)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    g1 = [math.exp(-(x * x) / 4.5) for x in range(-5, 6)]
    s = sum(g1)
    w = [[g1[i] * g1[j] / s**2 for j in range(11)] for i in range(11)]
    ma = sum(w[i][j] * a[i, j] for i in range(11) for j in range(11))
    mb = sum(w[i][j] * b[i, j] for i in range(11) for j in range(11))
    va = sum(w[i][j] * (a[i, j] - ma) ** 2 for i in range(11) for j in range(11))
    vb = sum(w[i][j] * (b[i, j] - mb) ** 2 for i in range(11) for j in range(11))
    cov = sum(
        w[i][j] * (a[i, j] - ma) * (b[i, j] - mb) for i in range(11) for j in range(11)
    )
    expected = ((2 * ma * mb + C1) * (2 * cov + C2)) / (
        (ma**2 + mb**2 + C1) * (va + vb + C2)
    )
    assert 0.0 < expected < 1.0
    assert ssim_y(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_valid_map_is_averaged_and_border_applies() -> None:
    # 13x12 after a 1-px border from 15x14: the map has 3x2 positions; the mean
    # over them must equal the mean of one-window SSIMs of each 11x11 patch.
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (15, 14, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    ya, yb = rgb_to_y(a)[1:-1, 1:-1], rgb_to_y(b)[1:-1, 1:-1]
    patches = [
        ssim_y(ya[i : i + 11, j : j + 11], yb[i : i + 11, j : j + 11])
        for i in range(3)
        for j in range(2)
    ]
    assert ssim_y(a, b, border=1) == pytest.approx(np.mean(patches), abs=1e-12)


def test_ssim_symmetric_and_drops_with_noise() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    light = np.clip(a + rng.normal(0, 5, a.shape), 0, 255)
    heavy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255)
    assert ssim_y(a, light) == pytest.approx(ssim_y(light, a), abs=1e-12)
    assert 1.0 > ssim_y(a, light) > ssim_y(a, heavy)
    assert psnr_y(a, light) > psnr_y(a, heavy)


def test_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr_y(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="11x11"):
        ssim_y(np.zeros((12, 12)), np.zeros((12, 12)), border=1)
    with pytest.raises(ValueError, match="Nothing left"):
        psnr_y(np.zeros((4, 4)), np.zeros((4, 4)), border=2)
