"""LR range test: the sweep, smoothing, suggestion and the files it writes."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

from sr_core.training.__main__ import main
from sr_core.training.config import Recipe, RecipeError
from sr_core.training.lr_find import (
    CSV_NAME,
    PNG_NAME,
    lr_at,
    lr_find,
    smooth_losses,
    suggest_lr,
)

HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def test_sweep_is_exponential() -> None:
    lrs = [lr_at(i, 5, 1e-6, 1e-2) for i in range(5)]
    assert lrs == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2])


def test_smoothing_is_debiased() -> None:
    assert smooth_losses([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    s = smooth_losses([1.0, 3.0])
    assert s[1] == pytest.approx((0.98 * 0.02 * 1 + 0.02 * 3) / (1 - 0.98**2))


def test_suggestion_is_the_steepest_descent() -> None:
    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]
    # Loss flat, then falls fastest around 1e-4, then blows up.
    losses = [2 - math.tanh((math.log10(lr) + 4) * 3) for lr in lrs]
    assert suggest_lr(lrs, losses) == pytest.approx(1e-4, rel=0.3)
    assert suggest_lr(lrs[:2], losses[:2]) is None


def test_lr_find_writes_csv_and_plot(
    tmp_path: Path, recipe: Recipe, make_settings: Any
) -> None:
    (tmp_path / "last.ckpt").write_bytes(b"a checkpoint that must stay as it is")
    settings = make_settings(tmp_path, progress=False)
    result = lr_find(recipe, settings, stage_index=0, steps=5, start_lr=1e-5)
    assert (tmp_path / "last.ckpt").read_bytes().startswith(b"a checkpoint")
    assert result.csv_path == tmp_path / CSV_NAME
    with result.csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert 1 <= len(rows) <= 5 and len(rows) == len(result.lrs)
    assert list(rows[0]) == ["step", "lr", "loss", "smooth_loss"]
    assert float(rows[0]["lr"]) == pytest.approx(1e-5)
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs)
    if HAS_MPL:
        assert result.png_path == tmp_path / PNG_NAME and result.png_path.is_file()
    else:
        assert result.png_path is None


def test_lr_find_bad_arguments(
    tmp_path: Path, recipe: Recipe, make_settings: Any
) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(RecipeError, match="stage"):
        lr_find(recipe, settings, stage_index=5)
    with pytest.raises(RecipeError, match="start-lr"):
        lr_find(recipe, settings, start_lr=1.0, end_lr=0.1)


def test_lr_find_cli(
    tmp_path: Path,
    train_dir: Path,
    valid_dir: Path,
    recipe_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["lr-find", "--data", str(train_dir), "--valid", str(valid_dir)]
    argv += ["--out", str(tmp_path), "--recipe", str(recipe_file)]
    argv += ["--encoder", "resnet18", "--workers", "0", "--precision", "fp32"]
    argv += ["--steps", "3"]
    argv += ["--stage", "1", "--start-lr", "1e-4", "--end-lr", "1e-2"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    with (tmp_path / CSV_NAME).open() as fh:
        lrs = [float(r["lr"]) for r in csv.DictReader(fh)]
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2])
