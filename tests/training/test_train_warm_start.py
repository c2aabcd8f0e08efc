"""A new run can start from a weights file (--init-weights) and keeps its lineage."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from sr_core.arch import UNetConfig, build_unet
from sr_core.errors import WeightsMismatchError, WeightsNotFoundError
from sr_core.training.__main__ import main
from sr_core.training.config import Recipe
from sr_core.training.export import export_run
from sr_core.training.loop import Trainer
from sr_core.weights import WeightsInfo, read_weights, save_weights

PARENT_TRAINING = {
    "recipe": {"name": "parent", "stages": []},
    "steps": 1000,
    "samples_seen": 8000,
    "hours": 1.5,
    "cpu_hours": 2.75,
}


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18 weights file standing in for the shipped weights."""
    torch.manual_seed(123)
    model = build_unet(UNetConfig(encoder="resnet18"))
    info = WeightsInfo(arch=model.config, name="parent-model", training=PARENT_TRAINING)
    return save_weights(
        tmp_path_factory.mktemp("parent") / "parent.safetensors", model, info
    )


def _assert_same_weights(model: torch.nn.Module, path: Path) -> None:
    state, _ = read_weights(path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k].to(v.dtype), msg=k)


def test_new_run_starts_from_file_and_exports_totals(
    tmp_path: Path, parent: Path, recipe: Recipe, make_settings: Any
) -> None:
    one_stage = dataclasses.replace(recipe, stages=recipe.stages[:1])
    # --encoder says resnet34; the file's resnet18 wins.
    settings = make_settings(
        tmp_path / "run", init_weights=str(parent), encoder="resnet34"
    )
    trainer = Trainer(one_stage, settings)
    assert trainer.arch.encoder == "resnet18"
    _assert_same_weights(trainer.model, parent)
    assert trainer.state.init_from["name"] == "parent-model"
    # No --seed: each refinement of a longer lineage draws new crops.
    assert trainer.settings.seed == PARENT_TRAINING["steps"]
    explicit = make_settings(tmp_path / "run2", init_weights=str(parent), seed=5)
    assert Trainer(one_stage, explicit).settings.seed == 5

    trainer.run()
    steps = trainer.state.steps
    assert steps > 0
    out = export_run(trainer.out, tmp_path / "child.safetensors")
    _, info = read_weights(out)
    t = info.training
    assert t["steps"] == PARENT_TRAINING["steps"] + steps
    assert t["samples_seen"] == PARENT_TRAINING["samples_seen"] + trainer.state.samples
    assert t["cpu_hours"] >= PARENT_TRAINING["cpu_hours"]
    assert t["init_from"]["file"] == "parent.safetensors"
    assert t["init_from"]["training"]["recipe"]["name"] == "parent"
    assert info.name.endswith(f"-{PARENT_TRAINING['steps'] + steps}steps")


def test_resume_takes_the_checkpoint_not_the_file(
    tmp_path: Path, parent: Path, recipe: Recipe, make_settings: Any
) -> None:
    copy = tmp_path / "parent.safetensors"
    copy.write_bytes(parent.read_bytes())
    settings = make_settings(tmp_path / "run", init_weights=str(copy), max_steps=1)
    first = Trainer(recipe, settings)
    first.run()
    assert first.stopped
    copy.unlink()  # resuming must not need the file any more
    resumed = Trainer(
        recipe, dataclasses.replace(settings, max_steps=None), resume=True
    )
    assert resumed.state.init_from["name"] == "parent-model"
    assert resumed.settings.seed == first.settings.seed == PARENT_TRAINING["steps"]
    for k, v in first.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, msg=k)


def test_missing_or_mismatched_file(
    tmp_path: Path, recipe: Recipe, make_settings: Any
) -> None:
    with pytest.raises(WeightsNotFoundError):
        Trainer(recipe, make_settings(tmp_path / "a", init_weights="nope.safetensors"))
    # Right metadata, wrong tensors: a resnet34 file whose header claims resnet18.
    wrong = tmp_path / "wrong.safetensors"
    model = build_unet(UNetConfig(encoder="resnet34"))
    save_weights(wrong, model, WeightsInfo(arch=UNetConfig(encoder="resnet18")))
    with pytest.raises(WeightsMismatchError, match="resnet18"):
        Trainer(recipe, make_settings(tmp_path / "b", init_weights=str(wrong)))
    assert not (tmp_path / "b" / "last.ckpt").exists()


def test_cli_reports_a_bad_init_file(
    tmp_path: Path,
    train_dir: Path,
    recipe_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["train", "--data", str(train_dir), "--out", str(tmp_path / "run")]
    argv += ["--recipe", str(recipe_file), "--encoder", "resnet18", "--workers", "0"]
    assert main([*argv, "--init-weights", str(tmp_path / "none.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err
