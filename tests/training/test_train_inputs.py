"""Bad inputs end with a clear message (exit code 2), never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from sr_core.training.__main__ import main
from sr_core.training.config import RecipeError, load_recipe, recipe_from_dict
from sr_core.training.loop import RunSettings, load_run_data
from tests.training.conftest import make_images

TINY = ["--encoder", "resnet18", "--workers", "0", "--precision", "fp32"]


def _train(data: Path, out: Path, recipe: Path | str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--recipe", str(recipe)]


def test_empty_folder(
    tmp_path: Path, recipe_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    argv = _train(tmp_path / "empty", tmp_path / "run", recipe_file)
    assert main([*argv, *TINY]) == 2
    err = capsys.readouterr().err
    assert "No usable images" in err and "empty" in err
    assert not (tmp_path / "run").exists()


def test_missing_folder(
    tmp_path: Path, recipe_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _train(tmp_path / "nope", tmp_path / "run", recipe_file)
    assert main([*argv, *TINY]) == 2
    assert "not found" in capsys.readouterr().err


def test_unreadable_image_is_skipped_and_reported(
    tmp_path: Path,
    train_dir: Path,
    valid_dir: Path,
    recipe_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # lr-find shares the data loading with train and costs a few steps only
    # (the DDP test also trains with a broken file in the folder).
    data = tmp_path / "data"
    shutil.copytree(train_dir, data)
    (data / "zz_broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    argv = ["lr-find", "--data", str(data), "--valid", str(valid_dir)]
    argv += ["--out", str(tmp_path / "run"), "--recipe", str(recipe_file)]
    assert main([*argv, *TINY, "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "zz_broken.jpg" in out and "skipped" in out
    assert (tmp_path / "run" / "lr_find.csv").is_file()


def test_too_few_images_for_the_batch(
    tmp_path: Path,
    valid_dir: Path,
    make_image_dir: Any,
    recipe_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = make_image_dir(tmp_path / "one", 1)
    argv = _train(data, tmp_path / "run", recipe_file)
    assert main([*argv, *TINY, "--valid", str(valid_dir)]) == 2
    assert "batch_size 2" in capsys.readouterr().err


def test_no_validation_images_is_refused_up_front(
    tmp_path: Path, recipe_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = make_images(tmp_path / "one", 1)
    assert main([*_train(one, tmp_path / "a", recipe_file), *TINY]) == 2
    assert "at least 2 usable images" in capsys.readouterr().err
    two = make_images(tmp_path / "two", 2)
    argv = [*_train(two, tmp_path / "b", recipe_file), *TINY, "--valid-limit", "0"]
    assert main(argv) == 2
    assert "--valid-limit must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_validation_images_under_the_training_folder_are_not_trained_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = make_images(tmp_path / "data", 3)
    valid = make_images(data / "valid", 1)  # --data data --valid data/valid
    settings = RunSettings(str(data), str(tmp_path / "run"), valid_dir=str(valid))
    run = load_run_data(settings)
    assert len(run.train) == 3 and len(run.valid) == 1
    assert not set(run.train) & set(run.valid)
    assert "left out of training" in caplog.text


def test_recipe_typo_names_the_key(
    tmp_path: Path,
    train_dir: Path,
    recipe_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text(
        recipe_file.read_text().replace("batch_size = 2", "batchsize = 2", 1)
    )
    assert main([*_train(train_dir, tmp_path / "run", bad), *TINY]) == 2
    err = capsys.readouterr().err
    assert "batchsize" in err and "stage 0" in err


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("[degradation]", "[degradation]\njpg_prob = 0.5"), "jpg_prob"),
        (
            ("[degradation]", "[degradation]\ninteger_scale_prob = 1.5"),
            "integer_scale_prob",
        ),
        (
            ("[degradation]", "[degradation]\ninteger_scales = [2, 5]"),
            "integer_scales",
        ),
        (('loss = "l1"', 'loss = "l1"\nweight_decy = 0.1'), "weight_decy"),
        (
            ('down_filters = ["bicubic", "bilinear"]', 'down_filters = ["bicubc"]'),
            "bicubc",
        ),
        (("crop = 32", "crop = 40"), "multiple of 32"),
        (("epochs = 2", 'epochs = "2"'), "epochs"),
        (("lr = 1e-3", 'lr = "slice(1e-3, )"'), "slice"),
        (('loss = "l1"', 'loss = "l2"'), "loss"),
        (('loss = "l1"', 'loss = "l1"\nema_decay = 1.0'), "ema_decay"),
    ],
)
def test_recipe_errors(
    tmp_path: Path, recipe_file: Path, edit: tuple[str, str], needle: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(recipe_file.read_text().replace(*edit, 1))
    with pytest.raises(RecipeError, match=needle):
        load_recipe(bad)


def test_recipe_not_found_lists_shipped() -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe("cpuu")
    for name in ("cpu", "cpu-refine", "cpu-refine-mse", "fastai"):
        assert repr(name) in str(err.value)


def test_train_help_names_every_shipped_recipe(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # no wrapping inside a hyphenated name
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("cpu", "cpu-refine", "cpu-refine-mse", "fastai"):
        assert f"{name}," in help_text or f"{name})" in help_text


def test_shipped_recipes_load() -> None:
    cpu = load_recipe("cpu")
    assert (cpu.loss, cpu.pretrained) == ("l1", False)
    assert [s.crop for s in cpu.stages] == [96, 160, 128, 128]
    refine = load_recipe("cpu-refine")
    assert (refine.loss, refine.pretrained, len(refine.stages)) == ("l1", False, 1)
    mse = load_recipe("cpu-refine-mse")
    assert (mse.loss, mse.ema_decay, mse.stages[0].crop) == ("mse", 0.999, 256)
    fastai = load_recipe("fastai")
    assert [s.frozen for s in fastai.stages] == [True, False, True, False]
    # The checkpoint stores the recipe as JSON; it must read back the same.
    for r in (cpu, refine, mse):
        assert recipe_from_dict(json.loads(json.dumps(r.to_dict())), r.name) == r


def test_feature_loss_without_vgg_weights(
    tmp_path: Path,
    train_dir: Path,
    recipe_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No cached weights, and any download attempt goes to a closed local port,
    # so this fails at once with or without a network.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    argv = _train(train_dir, tmp_path / "run", recipe_file)
    assert main([*argv, *TINY, "--loss", "feature"]) == 2
    err = capsys.readouterr().err
    assert "VGG16" in err and "--loss l1" in err and "--no-pretrained" in err
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_export_without_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["export", str(tmp_path), "--out", str(tmp_path / "w.safetensors")]) == 2
    )
    assert "No checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content", [b"PK\x03\x04 cut short", None], ids=["truncated", "foreign"]
)
def test_export_of_a_bad_checkpoint_is_a_message(
    tmp_path: Path, content: bytes | None, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "last.ckpt"
    if content is None:
        torch.save({"model": {}}, ckpt)  # loads, but no run metadata
    else:
        ckpt.write_bytes(content)
    assert main(["export", str(ckpt), "--out", str(tmp_path / "w.safetensors")]) == 2
    assert "is not a training checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "w.safetensors").exists()
