"""LR making for benchmarks: crop, antialiased bicubic downscale, JPEG."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sr_core.degrade import crop_to_multiple, make_lr, parse_degrade


def _hr(h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_crop_to_multiple_keeps_top_left() -> None:
    img = _hr(50, 70)
    out = crop_to_multiple(img, 4)
    assert out.shape == (48, 68, 3)
    np.testing.assert_array_equal(out, img[:48, :68])
    with pytest.raises(ValueError, match="smaller"):
        crop_to_multiple(_hr(3, 8), 4)


def test_make_lr_is_pillow_bicubic() -> None:
    hr = _hr()
    lr = make_lr(hr, 4)
    assert lr.shape == (12, 16, 3) and lr.dtype == np.uint8
    expected = Image.fromarray(hr).resize((16, 12), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(lr, np.asarray(expected))


def test_make_lr_antialiases() -> None:
    # A 1-px checkerboard averages to mid-grey when the filter antialiases;
    # point sampling would keep only black or white.
    hr = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    lr = make_lr(hr, 4)
    assert lr.shape == (16, 16)
    assert np.abs(lr[2:-2, 2:-2].astype(int) - 128).max() <= 2


def test_make_lr_jpeg_changes_pixels_and_is_deterministic() -> None:
    hr = _hr()
    plain, jpeg = make_lr(hr, 2), make_lr(hr, 2, "jpeg60")
    assert jpeg.shape == plain.shape and jpeg.dtype == np.uint8
    assert not np.array_equal(plain, jpeg)
    np.testing.assert_array_equal(jpeg, make_lr(hr, 2, "jpeg60"))
    assert make_lr(hr[..., 0], 2, "jpeg60").shape == (24, 32)


def test_make_lr_errors() -> None:
    with pytest.raises(ValueError, match="multiple"):
        make_lr(_hr(50, 64), 4)
    with pytest.raises(ValueError, match="uint8"):
        make_lr(_hr().astype(np.float32), 2)


@pytest.mark.parametrize(
    ("name", "quality"), [(None, None), ("none", None), ("jpeg60", 60), ("jpeg5", 5)]
)
def test_parse_degrade(name: str | None, quality: int | None) -> None:
    assert parse_degrade(name) == quality


@pytest.mark.parametrize("name", ["jpeg0", "jpeg101", "blur", "jpeg"])
def test_parse_degrade_rejects(name: str) -> None:
    with pytest.raises(ValueError, match="jpegNN"):
        parse_degrade(name)
