"""read_image / save_image on tiny images the tests make themselves."""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from sr_core import imageops
from sr_core.errors import OutputExistsError, OutputWriteError, UnsupportedImageError
from sr_core.imageops import ImageData, default_output_name, read_image, save_image
from sr_core.pixelmodes import fitting_icc

W, H = 16, 12


def _gradient_rgb() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.dstack([x * 15, y * 20, (x + y) * 5]).astype(np.uint8)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _write_rgb16_png(path: Path, pixel: bytes) -> None:
    """16-bit RGB PNG (Pillow cannot write one); ``pixel`` is 6 bytes big-endian."""
    rows = b"".join(b"\x00" + pixel * W for _ in range(H))
    ihdr = struct.pack(">IIBBBBB", W, H, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


# --- reading: layouts and conversions ---------------------------------------


def test_rgb_png_reads_exactly(tmp_path: Path) -> None:
    arr = _gradient_rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (H, W, 3)
    np.testing.assert_array_equal(img.pixels, arr)
    assert img.notes == () and img.format == "PNG"
    assert img.source == tmp_path / "a.png" and img.size == (W, H)


def test_greyscale_stays_2d(tmp_path: Path) -> None:
    arr = _gradient_rgb()[..., 0]
    Image.fromarray(arr, mode="L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.pixels.shape == (H, W)
    np.testing.assert_array_equal(img.pixels, arr)


def test_exif_rotated_jpeg_is_upright_and_orientation_reset(tmp_path: Path) -> None:
    arr = np.zeros((H, W, 3), np.uint8)
    arr[:, : W // 2] = (255, 0, 0)  # left half red, right half blue
    arr[:, W // 2 :] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    exif[0x010F] = "TestCam"
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    img = read_image(tmp_path / "r.jpg")
    assert img.pixels.shape == (W, H, 3)  # width and height swapped
    top, bottom = img.pixels[2].mean(axis=0), img.pixels[-3].mean(axis=0)
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]
    assert any("orientation 6" in n for n in img.notes)
    carried = Image.Exif()
    carried.load(img.exif)
    assert carried[0x0112] == 1 and carried[0x010F] == "TestCam"

    out = save_image(img, tmp_path / "out.jpg")
    with Image.open(out) as back:
        assert back.size == (H, W)
        assert back.getexif()[0x0112] == 1
    assert read_image(out).notes == ()  # not rotated a second time


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 340).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.pixels.shape == (H, W) and img.pixels.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, (arr >> 8).astype(np.uint8))
    assert any("16-bit" in n for n in img.notes)


def test_16bit_rgb_png_keeps_high_byte(tmp_path: Path) -> None:
    _write_rgb16_png(tmp_path / "c16.png", b"\xab\xcd\x12\x34\xff\xff")
    img = read_image(tmp_path / "c16.png")
    assert img.pixels.shape == (H, W, 3)
    assert tuple(img.pixels[0, 0]) == (0xAB, 0x12, 0xFF)
    assert any("16-bit" in n for n in img.notes)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.full((H, W), 40000, np.int32), 40000 >> 8),  # 16-bit data in mode I
        (np.full((H, W), 200, np.int32), 200),  # 8-bit data in mode I
        (np.full((H, W), 0.5, np.float32), 128),  # float 0–1
    ],
)
def test_high_depth_tiff_to_8bit(
    tmp_path: Path, values: np.ndarray, expected: int
) -> None:
    Image.fromarray(values).save(tmp_path / "d.tif")
    img = read_image(tmp_path / "d.tif")
    assert img.pixels.shape == (H, W)
    assert int(img.pixels[0, 0]) == expected
    assert img.notes


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = Image.new("P", (W, H), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    pal.putpixel((0, 0), 0)
    pal.save(tmp_path / "p.png", transparency=0)
    img = read_image(tmp_path / "p.png")
    assert img.pixels.shape == (H, W, 4)
    assert img.pixels[0, 0, 3] == 0
    assert tuple(img.pixels[5, 5]) == (255, 0, 0, 255)
    assert any("Palette" in n and "RGBA" in n for n in img.notes)


@pytest.mark.parametrize(
    ("mode", "key", "other"), [("RGB", (0, 0, 0), (9, 9, 9)), ("L", 0, 9)]
)
def test_transparent_colour_becomes_alpha(tmp_path: Path, mode, key, other) -> None:
    """A PNG tRNS colour (optipng writes these for on/off alpha) stays clear."""
    img = Image.new(mode, (W, H), other)
    img.putpixel((0, 0), key)
    img.save(tmp_path / "k.png", transparency=key)
    read = read_image(tmp_path / "k.png")
    assert read.pixels.shape == (H, W, 4)
    assert read.pixels[0, 0, 3] == 0 and read.pixels[5, 5, 3] == 255
    assert tuple(read.pixels[5, 5, :3]) == (9, 9, 9)
    assert any("transparent colour" in n for n in read.notes)


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    pal = Image.new("P", (W, H), 2)
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    pal.save(tmp_path / "p.gif")
    img = read_image(tmp_path / "p.gif")
    assert img.pixels.shape == (H, W, 3)
    assert tuple(img.pixels[0, 0]) == (0, 255, 0)
    assert any("Palette" in n for n in img.notes)


def test_cmyk_jpeg_without_profile_plain_convert(tmp_path: Path) -> None:
    Image.new("CMYK", (W, H), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    img = read_image(tmp_path / "c.jpg")
    assert img.pixels.shape == (H, W, 3)
    r, g, b = img.pixels[5, 5].astype(int)
    assert r > 200 and g < 60 and b < 60  # C=0, M=Y=100 % is red
    assert any("CMYK" in n and "without" in n for n in img.notes)
    assert img.icc_profile is None


def test_cmyk_jpeg_with_profile_uses_imagecms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_convert(im: Image.Image, src: object, dst: object, **kw: object):
        calls.append(kw)
        return im.convert("RGB")

    monkeypatch.setattr(ImageCms, "profileToProfile", fake_convert)
    # No CMYK profile can be generated offline; any valid ICC exercises the path.
    Image.new("CMYK", (W, H), (0, 255, 255, 0)).save(
        tmp_path / "c.jpg", icc_profile=_srgb_icc()
    )
    img = read_image(tmp_path / "c.jpg")
    assert calls == [{"outputMode": "RGB"}]
    assert any("ICC" in n for n in img.notes)
    assert img.icc_profile is None  # pixels are sRGB now


def test_la_becomes_rgba(tmp_path: Path) -> None:
    la = Image.merge("LA", [Image.new("L", (W, H), 90), Image.new("L", (W, H), 30)])
    la.save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.pixels.shape == (H, W, 4)
    assert tuple(img.pixels[3, 3]) == (90, 90, 90, 30)
    assert any("LA" in n and "RGBA" in n for n in img.notes)


def test_bilevel_becomes_greyscale(tmp_path: Path) -> None:
    bw = Image.new("1", (W, H), 0)
    bw.putpixel((1, 1), 1)
    bw.save(tmp_path / "bw.png")
    img = read_image(tmp_path / "bw.png")
    assert img.pixels.shape == (H, W)
    assert img.pixels[1, 1] == 255 and img.pixels[0, 0] == 0
    assert any("1-bit" in n for n in img.notes)


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (W, H), c) for c in ("red", "lime", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / "anim.gif")
    assert tuple(img.pixels[0, 0]) == (255, 0, 0)
    assert any("3 frames" in n for n in img.notes)


def test_grey_icc_dropped_when_pixels_become_rgb() -> None:
    notes: list[str] = []
    grey_header = bytes(16) + b"GRAY" + bytes(108)
    assert fitting_icc(grey_header, grey=False, notes=notes) is None
    assert notes and "GRAY" in notes[0]
    assert fitting_icc(grey_header, grey=True, notes=[]) == grey_header


# --- reading: bad input --------------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_truncated_file(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / f"t.{ext}"
    Image.fromarray(rng.integers(0, 255, (H, W, 3), np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsupportedImageError, match=r"t\..*(truncated|corrupt)"):
        read_image(path)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "folder"),
    ],
    ids=["zero-byte", "text-as-png", "missing", "directory"],
)
def test_bad_inputs_name_file_and_problem(tmp_path: Path, make, words: str) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(UnsupportedImageError, match=words) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_bomb_guard_parameter_and_constant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (W, H)).save(tmp_path / "big.png")
    with pytest.raises(UnsupportedImageError, match="limit"):
        read_image(tmp_path / "big.png", max_pixels=W * H - 1)
    monkeypatch.setattr(imageops, "MAX_PIXELS", 100)
    with pytest.raises(UnsupportedImageError, match="decompression bomb"):
        read_image(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_pixels=W * H).size == (W, H)


def test_pillow_bomb_error_is_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (W, H)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # error above 2 × this
    with pytest.raises(UnsupportedImageError, match="too large"):
        read_image(tmp_path / "big.png")


# --- saving ---------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".PNG", ".tif", ".tiff", ".webp", ".jpg"])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_save_round_trip(tmp_path: Path, ext: str, channels: int) -> None:
    rgb = _gradient_rgb()
    arr = {0: rgb[..., 0], 3: rgb, 4: np.dstack([rgb, rgb[..., 1]])}[channels]
    out = save_image(ImageData(arr), tmp_path / f"o{ext}", quality=100)
    assert out == tmp_path / f"o{ext}"
    back = read_image(out).pixels
    if ext == ".jpg":  # lossy, and alpha is composited away
        assert back.shape == (arr.shape if channels < 4 else (H, W, 3))
        if channels < 4:
            assert np.abs(back.astype(int) - arr).max() <= 8
        return
    if ext == ".webp" and channels == 0:
        back = back[..., 0]  # WebP stores grey as RGB
    np.testing.assert_array_equal(back, arr)


def test_jpeg_composites_alpha_on_white(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arr = np.zeros((H, W, 4), np.uint8)  # fully transparent black
    with caplog.at_level(logging.WARNING, logger="sr_core.imageops"):
        out = save_image(ImageData(arr), tmp_path / "a.jpeg")
    assert "alpha" in caplog.text
    with Image.open(out) as back:
        assert back.mode == "RGB"
        assert min(back.getpixel((5, 5))) > 245


def test_grey_jpeg_stays_grey(tmp_path: Path) -> None:
    out = save_image(ImageData(np.full((H, W), 77, np.uint8)), tmp_path / "g.jpg")
    with Image.open(out) as back:
        assert back.mode == "L"


def test_quality_changes_jpeg_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    img = ImageData(rng.integers(0, 255, (64, 64, 3), np.uint8))
    low = save_image(img, tmp_path / "low.jpg", quality=10).stat().st_size
    high = save_image(img, tmp_path / "high.jpg", quality=95).stat().st_size
    assert low < high
    with pytest.raises(ValueError, match="quality"):
        save_image(img, tmp_path / "x.jpg", quality=0)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_icc_carried(tmp_path: Path, ext: str) -> None:
    icc = _srgb_icc()
    Image.fromarray(_gradient_rgb()).save(tmp_path / "in.png", icc_profile=icc)
    img = read_image(tmp_path / "in.png")
    assert img.icc_profile == icc
    out = save_image(img, tmp_path / f"out{ext}")
    assert read_image(out).icc_profile == icc


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_dpi_carried(tmp_path: Path, ext: str) -> None:
    Image.fromarray(_gradient_rgb()).save(tmp_path / f"in{ext}", dpi=(300, 300))
    img = read_image(tmp_path / f"in{ext}")
    assert img.dpi == (300.0, 300.0)
    assert read_image(save_image(img, tmp_path / f"out{ext}")).dpi == (300.0, 300.0)


def test_refuses_existing_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "o.png"
    target.write_bytes(b"keep me")
    img = ImageData(_gradient_rgb())
    with pytest.raises(OutputExistsError, match="already exists"):
        save_image(img, target)
    assert target.read_bytes() == b"keep me"
    save_image(img, target, overwrite=True)
    np.testing.assert_array_equal(read_image(target).pixels, img.pixels)


def test_never_overwrites_source(tmp_path: Path) -> None:
    src = tmp_path / "src.png"
    Image.fromarray(_gradient_rgb()).save(src)
    before = src.read_bytes()
    img = read_image(src)
    for spelling in (src, tmp_path / "sub" / ".." / "src.png"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(OutputExistsError, match="source"):
            save_image(img.with_pixels(img.pixels[::2, ::2]), spelling, overwrite=True)
    assert src.read_bytes() == before


def test_failed_encode_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_save(self: Image.Image, fp: io.BufferedWriter, **kw: object) -> None:
        fp.write(b"partial")
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OutputWriteError, match="out.png"):
        save_image(ImageData(_gradient_rgb()), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Image.Image, fp: io.BufferedWriter, **kw: object) -> None:
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(ImageData(_gradient_rgb()), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Image.Image, fp: io.BufferedWriter, **kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(OutputWriteError, match="Disk full"):
        save_image(ImageData(_gradient_rgb()), tmp_path / "out.tif")
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kw: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(imageops.os, "open", denied)
    with pytest.raises(OutputWriteError, match="permission denied or read-only"):
        save_image(ImageData(_gradient_rgb()), tmp_path / "out.png")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root ignores folder permissions (simulated test covers it)",
)
def test_read_only_folder_real(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputWriteError, match="read-only"):
            save_image(ImageData(_gradient_rgb()), ro / "out.png")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_bad_targets(tmp_path: Path) -> None:
    img = ImageData(_gradient_rgb())
    with pytest.raises(OutputWriteError, match="does not exist"):
        save_image(img, tmp_path / "missing" / "out.png")
    with pytest.raises(OutputWriteError, match="unknown extension"):
        save_image(img, tmp_path / "out.bmp")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(OutputWriteError, match="folder"):
        save_image(img, tmp_path / "d.png")


def test_output_permissions_follow_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = save_image(ImageData(_gradient_rgb()), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


# --- small helpers ---------------------------------------------------------------


def test_default_output_name() -> None:
    assert default_output_name(Path("/x/photo.v2.JPG"), (2048, 1536), "png") == (
        "photo.v2_2048x1536.png"
    )
    assert default_output_name(Path("a.tif"), (10, 20), ".JPG") == "a_10x20.jpg"


def test_imagedata_validates_and_with_pixels() -> None:
    with pytest.raises(ValueError, match="uint8"):
        ImageData(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        ImageData(np.zeros((4, 4, 2), np.uint8))
    base = ImageData(np.zeros((4, 4), np.uint8), dpi=(72.0, 72.0), notes=("n",))
    big = base.with_pixels(np.zeros((8, 8, 3), np.uint8))
    assert big.size == (8, 8) and big.dpi == (72.0, 72.0) and big.notes == ("n",)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_exif_carried(tmp_path: Path, ext: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.fromarray(_gradient_rgb()).save(tmp_path / "in.png", exif=exif.tobytes())
    out = save_image(read_image(tmp_path / "in.png"), tmp_path / f"out{ext}")
    with Image.open(out) as back:
        assert back.getexif()[0x010F] == "TestCam"


def test_damaged_exif_is_dropped_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(_gradient_rgb()).save(tmp_path / "a.png")

    def broken(*args: object, **kw: object) -> Image.Image:
        raise SyntaxError("bad EXIF IFD")

    monkeypatch.setattr(imageops.ImageOps, "exif_transpose", broken)
    img = read_image(tmp_path / "a.png")
    assert img.exif is None and any("EXIF" in n for n in img.notes)
    np.testing.assert_array_equal(img.pixels, _gradient_rgb())


def test_tiff_header_is_not_carried_as_exif(tmp_path: Path) -> None:
    """A TIFF's EXIF is its header: carried over it would undo the upscale."""
    small = _gradient_rgb()
    tags = {0x010F: "TestCam", 700: b"<x:xmpmeta/>" * 6000}  # Make, 72 KB XMP
    Image.fromarray(small).save(tmp_path / "in.tif", tiffinfo=tags)
    img = read_image(tmp_path / "in.tif")
    big = np.repeat(np.repeat(img.pixels, 2, axis=0), 2, axis=1)
    for ext in (".tif", ".jpg", ".png"):
        out = save_image(img.with_pixels(big), tmp_path / f"out{ext}")
        with Image.open(out) as back:
            assert back.size == (big.shape[1], big.shape[0])
            assert back.getexif()[0x010F] == "TestCam"
            assert 700 not in back.getexif()
            if ext != ".jpg":
                np.testing.assert_array_equal(np.asarray(back), big)


def test_exif_sub_ifd_carried_and_tiff_still_saves(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x9003] = "2020:01:02 03:04:05"  # DateTimeOriginal
    Image.fromarray(_gradient_rgb()).save(tmp_path / "in.jpg", exif=exif)
    img = read_image(tmp_path / "in.jpg")
    for ext, dated in ((".jpg", True), (".png", True), (".tif", False)):
        out = save_image(img, tmp_path / f"out{ext}")
        with Image.open(out) as back:
            assert back.getexif()[0x010F] == "TestCam"
            taken = back.getexif().get_ifd(0x8769).get(0x9003)
            assert taken == ("2020:01:02 03:04:05" if dated else None)


def test_exif_too_big_for_jpeg_is_dropped_not_fatal(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "d" * 70_000  # ImageDescription beyond one JPEG segment
    Image.fromarray(_gradient_rgb()).save(tmp_path / "in.png", exif=exif.tobytes())
    out = save_image(read_image(tmp_path / "in.png"), tmp_path / "out.jpg")
    with Image.open(out) as back:
        assert back.size == (_gradient_rgb().shape[1], _gradient_rgb().shape[0])
        assert 0x010E not in back.getexif()
