"""benchmarks/quality.py end to end on two tiny generated HR images."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from sr_core.degrade import make_lr
from sr_core.metrics import psnr_y

ROOT = Path(__file__).resolve().parents[2]


def _load_benchmark() -> ModuleType:
    # benchmarks/ is not an installed package: load the checkout's file directly.
    spec = importlib.util.spec_from_file_location(
        "quality_benchmark", ROOT / "benchmarks" / "quality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


quality = _load_benchmark()


def _smooth_image(h: int, w: int, seed: int) -> Image.Image:
    """A photo-like smooth image: coarse random colours, bicubically enlarged."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    _smooth_image(48, 64, 0).save(folder / "a.png")
    _smooth_image(70, 50, 1).save(folder / "b.png")  # not a multiple of 4: cropped
    (folder / "notes.txt").write_text("not an image")
    return folder


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_baselines_without_model(
    hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res" / "q.csv"
    status = quality.main(
        ["--hr", str(hr_dir), "--scale", "4", "--no-model", "--csv", str(out)]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed
    assert "bicubic" in printed and "lanczos" in printed

    rows = _read_csv(out)
    assert [r["image"] for r in rows] == ["a.png", "b.png", "MEAN"]
    assert (rows[1]["width"], rows[1]["height"]) == ("48", "68")
    assert "model_psnr" not in rows[0]
    bicubic = [float(r["bicubic_psnr"]) for r in rows[:2]]
    for value in bicubic:
        assert math.isfinite(value) and 20.0 < value < 60.0
    assert float(rows[2]["bicubic_psnr"]) == pytest.approx(np.mean(bicubic), abs=1e-3)
    assert 0.5 < float(rows[2]["lanczos_ssim"]) <= 1.0

    # The row is what the documented protocol gives, computed independently.
    hr = np.asarray(Image.open(hr_dir / "a.png").convert("RGB"))
    sr = Image.fromarray(make_lr(hr, 4)).resize((64, 48), Image.Resampling.BICUBIC)
    assert float(rows[0]["bicubic_psnr"]) == pytest.approx(
        psnr_y(np.asarray(sr), hr, 4), abs=1e-4
    )


def test_jpeg_degradation_lowers_scores(hr_dir: Path, tmp_path: Path) -> None:
    plain, jpeg = tmp_path / "plain.csv", tmp_path / "jpeg.csv"
    args = ["--hr", str(hr_dir), "--scale", "2", "--no-model", "--csv"]
    assert quality.main([*args, str(plain)]) == 0
    assert quality.main([*args, str(jpeg), "--degrade", "jpeg60", "--limit", "5"]) == 0
    mean_plain = float(_read_csv(plain)[-1]["bicubic_psnr"])
    mean_jpeg = float(_read_csv(jpeg)[-1]["bicubic_psnr"])
    assert mean_jpeg < mean_plain


def test_missing_weights_skips_model_row_with_core_message(
    hr_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.safetensors"
    status = quality.main(
        ["--hr", str(hr_dir), "--scale", "2", "--weights", str(missing), "--limit", "1"]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "Model row skipped: no weights found" in printed
    assert str(missing) in printed  # the core's own WeightsNotFoundError text
    assert "model - bicubic" not in printed


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit):
        quality.main(["--hr", "x", "--scale", "5"])
    with pytest.raises(SystemExit):
        quality.main(["--hr", "x", "--scale", "2", "--degrade", "blur"])


def test_model_row_with_tiny_weights(
    hr_dir: Path,
    tmp_path: Path,
    tiny_weights: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "model.csv"
    args = ["--hr", str(hr_dir), "--scale", "2", "--weights", str(tiny_weights)]
    assert quality.main([*args, "--device", "cpu", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tiny-test" in printed  # the model's description line
    assert "model - bicubic" in printed
    rows = _read_csv(out)
    assert [r["image"] for r in rows] == ["a.png", "b.png", "MEAN"]
    for row in rows:
        assert math.isfinite(float(row["model_psnr"]))
        assert -1.0 <= float(row["model_ssim"]) <= 1.0
        assert float(row["model_seconds"]) >= 0.0


def test_ensemble_changes_the_model_row_and_says_so(
    hr_dir: Path,
    tmp_path: Path,
    tiny_weights: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--hr", str(hr_dir), "--scale", "2", "--weights", str(tiny_weights)]
    psnr = {}
    for passes in ("1", "4"):
        out = tmp_path / f"e{passes}.csv"
        run = [*args, "--device", "cpu", "--csv", str(out), "--ensemble", passes]
        assert quality.main(run) == 0
        psnr[passes] = _read_csv(out)[-1]["model_psnr"]
    assert "model ensemble 4" in capsys.readouterr().out
    assert psnr["1"] != psnr["4"]  # the option reached the model
    with pytest.raises(SystemExit):
        quality.main([*args, "--ensemble", "3"])
