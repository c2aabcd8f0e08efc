"""The ``upscaler`` CLI end to end, in-process, with a tiny random-weights model
(``tiny_weights`` from tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sr_core
from sr_core import cli
from sr_core.batch import UsageError, plan_jobs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def weights(tiny_weights: Path) -> Path:
    """The session's tiny resnet18 weights file (tests/conftest.py)."""
    return tiny_weights


def _photo(path: Path, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(len(path.name))
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (size[1], size[0]) + ((channels,) if channels else ())
    Image.fromarray(rng.integers(0, 255, shape, np.uint8)).save(path)
    return path


def _run(weights: Path, *args: str | Path) -> int:
    base = ["--weights", str(weights), "--device", "cpu", "--precision", "fp32"]
    return cli.main([str(a) for a in args] + base + ["--threads", "1"])


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


# --- single images --------------------------------------------------------------


def test_single_file_size(tmp_path: Path, weights: Path) -> None:
    src = _photo(tmp_path / "a.png")
    assert _run(weights, src, "-o", tmp_path / "out" / "big.png", "--size", 64) == 0
    assert _size(tmp_path / "out" / "big.png") == (64, 48)


def test_scale_and_exact(tmp_path: Path, weights: Path) -> None:
    src = _photo(tmp_path / "a.png", mode="RGBA")
    assert _run(weights, src, "-o", tmp_path / "s.webp", "--scale", "1.5") == 0
    assert _size(tmp_path / "s.webp") == (60, 45)
    args = ("--width", 50, "--height", 20)
    assert _run(weights, src, "-o", tmp_path / "e.jpg", *args) == 0
    assert _size(tmp_path / "e.jpg") == (50, 20)


def test_ensemble_runs_the_averaged_passes(tmp_path: Path, weights: Path) -> None:
    src = _photo(tmp_path / "a.png")
    assert _run(weights, src, "-o", tmp_path / "one.png", "--scale", 2) == 0
    args = ("--scale", 2, "--ensemble", 8)
    assert _run(weights, src, "-o", tmp_path / "eight.png", *args) == 0
    one, eight = (
        np.asarray(Image.open(tmp_path / n)) for n in ("one.png", "eight.png")
    )
    assert one.shape == eight.shape == (60, 80, 3)
    assert np.abs(one.astype(int) - eight).max() > 0  # the option reached the core


def test_output_folder_for_one_file(tmp_path: Path, weights: Path) -> None:
    src = _photo(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    assert _run(weights, src, "-o", tmp_path / "out", "--size", 64) == 0
    assert _size(tmp_path / "out" / "a_64x48.png") == (64, 48)


def test_refuses_overwrite_unless_asked(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _photo(tmp_path / "a.png")
    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    assert _run(weights, src, "-o", out, "--size", 64) == 1
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"old"
    assert _run(weights, src, "-o", out, "--size", 64, "--overwrite") == 0
    assert _size(out) == (64, 48)


def test_never_overwrites_input(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _photo(tmp_path / "a.png")
    before = src.read_bytes()
    assert _run(weights, src, "-o", src, "--size", 64, "--overwrite") == 1
    assert "input" in capsys.readouterr().err
    assert src.read_bytes() == before


# --- batches --------------------------------------------------------------------


def test_folder_batch_continues_past_bad_file(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    _photo(inp / "a.png")
    _photo(inp / "sub" / "b.jpg")
    (inp / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (inp / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    assert _run(weights, inp, "-o", out, "--size", 64) == 1
    assert _size(out / "a_64x48.png") == (64, 48)
    assert _size(out / "sub" / "b_64x48.jpg") == (64, 48)
    err = capsys.readouterr().err
    assert "2 written, 1 failed" in err
    assert str(inp / "broken.png") in err.split("failed:")[1]
    assert sorted(p.name for p in out.rglob("*")) == [
        "a_64x48.png",
        "b_64x48.jpg",
        "sub",
    ]


def test_overwrite_never_replaces_another_input_of_the_run(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cat.png's output name is the user's own cat_64x48.png, read later."""
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "cat.png")
    theirs = _photo(photos / "cat_64x48.png", (64, 48))
    before = theirs.read_bytes()
    assert _run(weights, photos, "-o", photos, "--size", 64, "--overwrite") == 1
    assert theirs.read_bytes() == before
    assert "refusing to overwrite the input" in capsys.readouterr().err


def test_a_bug_on_one_image_fails_that_image_not_the_batch(
    tmp_path: Path,
    weights: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = sr_core.iter_upscale

    def flaky(pixels, model, options):  # noqa: ANN001, ANN202
        if pixels.shape[1] == 30:
            raise MemoryError
        if pixels.shape[1] == 20:
            raise RuntimeError("boom")
        return (yield from real(pixels, model, options))

    monkeypatch.setattr(sr_core, "iter_upscale", flaky)
    a, b = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.png", (30, 40))
    c = _photo(tmp_path / "c.png", (20, 20))
    assert _run(weights, a, b, c, "-o", tmp_path / "o", "--size", 64) == 1
    assert _size(tmp_path / "o" / "a_64x48.png") == (64, 48)
    err = capsys.readouterr().err
    assert "1 written, 2 failed" in err
    assert "not enough memory" in err and "RuntimeError('boom')" in err


def test_too_large_for_webp_fails_before_the_upscale(
    tmp_path: Path,
    weights: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def never(*args: object, **kw: object):  # noqa: ANN202
        raise AssertionError("upscaled anyway")

    monkeypatch.setattr(sr_core, "iter_upscale", never)
    src = _photo(tmp_path / "wide.png", (1024, 4))
    out = tmp_path / "big.webp"
    assert _run(weights, src, "-o", out, "--width", 16384, "--height", 64) == 1
    assert "WEBP holds at most 16383 px" in capsys.readouterr().err
    assert not out.exists()


def test_several_files_with_format(tmp_path: Path, weights: Path) -> None:
    a, b = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.tif", (30, 40))
    assert (
        _run(weights, a, b, "-o", tmp_path / "o", "--size", 64, "--format", "jpg") == 0
    )
    assert _size(tmp_path / "o" / "a_64x48.jpg") == (64, 48)
    assert _size(tmp_path / "o" / "b_48x64.jpg") == (48, 64)


# --- setup and usage errors -----------------------------------------------------


def test_missing_weights_message_and_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _photo(tmp_path / "a.png")
    code = _run(tmp_path / "nope.safetensors", src, "-o", tmp_path / "o.png")
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert "nope.safetensors" in err and "train" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_version_with_and_without_weights(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--version", "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    assert f"upscaler {cli._version()}" in out
    assert "tiny-test (2026-01-01)" in out
    assert cli.main(["--version", "--weights", str(tmp_path / "x.safetensors")]) == 0
    assert "none loaded" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--size", "64", "--scale", "2"],
        ["--width", "64"],
        ["--tile", "33"],
        ["--quality", "101"],
        ["--scale", "-1"],
        ["--scale", "inf"],
        ["--scale", "nan"],
        ["--ensemble", "3"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, weights: Path, args: list[str]) -> None:
    src = _photo(tmp_path / "a.png")
    assert _run(weights, src, "-o", tmp_path / "o.png", *args) == cli.EXIT_USAGE


def test_usage_errors_about_paths(tmp_path: Path, weights: Path) -> None:
    src = _photo(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.png").write_bytes(b"x")
    assert _run(weights, src) == 2  # no -o
    assert _run(weights, "-o", tmp_path / "o.png") == 2  # no input
    assert _run(weights, src, "-o", tmp_path / "o.bmp") == 2
    assert _run(weights, src, "-o", tmp_path / "o.png", "--format", "jpg") == 2
    assert _run(weights, src, src, "-o", tmp_path / "file.png") == 2
    assert _run(weights, tmp_path / "empty", "-o", tmp_path / "o") == 2


def test_plan_jobs_skips_hidden_and_nested_output(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    (inp / ".cache").mkdir(parents=True)
    (inp / "out").mkdir()
    for p in (inp / "a.PNG", inp / ".cache" / "h.png", inp / "out" / "a_2x2.png"):
        p.write_bytes(b"")
    jobs = plan_jobs([str(inp), str(inp / "a.PNG")], str(inp / "out"), None)
    assert [(j.source.name, j.ext) for j in jobs] == [("a.PNG", ".png")]
    with pytest.raises(UsageError, match="-o"):
        plan_jobs([str(inp)], None, None)


# --- interruption ---------------------------------------------------------------


def test_ctrl_c_during_upscale_leaves_nothing(
    tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kw: object):  # noqa: ANN202
        yield sr_core.Progress(0, 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(sr_core, "iter_upscale", interrupted)
    src = _photo(tmp_path / "a.png")
    out = tmp_path / "out"
    assert _run(weights, src, _photo(tmp_path / "b.png"), "-o", out) == 130
    assert not out.exists() or list(out.iterdir()) == []


def test_ctrl_c_during_save_leaves_nothing(
    tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Image.Image, fp: object, **kw: object) -> None:
        raise KeyboardInterrupt

    src = _photo(tmp_path / "a.png")
    monkeypatch.setattr(Image.Image, "save", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    assert _run(weights, src, "-o", out, "--size", 64) == 130
    assert list(out.iterdir()) == []


def test_python_m_sr_core_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sr_core", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "exit codes" in proc.stdout and "--overwrite" in proc.stdout
