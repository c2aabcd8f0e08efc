"""The moving average of the weights (recipe ``ema_decay``): maths, resume, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from sr_core.training.__main__ import main
from sr_core.training.config import Recipe
from sr_core.training.loop import HISTORY, Trainer, load_checkpoint
from sr_core.weights import read_weights

DECAY = 0.5  # large steps, so a wrong update is far off


@pytest.fixture(scope="module")
def ema_recipe(recipe: Recipe) -> Recipe:
    """The tiny recipe's first stage (2 epochs of 2 steps) with an average."""
    return dataclasses.replace(recipe, stages=recipe.stages[:1], ema_decay=DECAY)


def _float_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone()
        for k, v in module.state_dict().items()
        if v.is_floating_point()
    }


@pytest.fixture(scope="module")
def straight(
    tmp_path_factory: pytest.TempPathFactory, ema_recipe: Recipe, make_settings: Any
) -> tuple[Trainer, list[dict[str, torch.Tensor]]]:
    """An uninterrupted run, and the trained weights after each of its steps."""
    trainer = Trainer(ema_recipe, make_settings(tmp_path_factory.mktemp("ema")))
    snapshots: list[dict[str, torch.Tensor]] = []
    real_step = trainer._train_step

    def step(*args: Any) -> float:
        loss = real_step(*args)
        snapshots.append(_float_state(trainer.model))
        return loss

    trainer._train_step = step  # type: ignore[method-assign]
    trainer.run()
    return trainer, snapshots


def test_average_follows_the_ema_recursion(
    straight: tuple[Trainer, list[dict[str, torch.Tensor]]],
) -> None:
    trainer, snapshots = straight
    assert len(snapshots) == trainer.state.steps == 4
    want = dict(snapshots[0])  # the first update copies the weights
    for snap in snapshots[1:]:
        want = {k: DECAY * want[k] + (1 - DECAY) * snap[k] for k in want}
    got = _float_state(trainer.ema.module)
    assert got.keys() == want.keys()
    moved = 0
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6, msg=k)
        moved += not torch.equal(v, snapshots[-1][k])
    # BatchNorm statistics are averaged too, not just the parameters.
    assert any("running_mean" in k for k in got)
    assert moved > len(want) // 2  # the average is not the last weights


def test_average_is_validated_and_exported(
    tmp_path: Path, straight: tuple[Trainer, list[dict[str, torch.Tensor]]]
) -> None:
    trainer, _ = straight
    run = trainer.out
    header = (run / HISTORY).read_text().splitlines()[0].split(",")
    assert "ema_psnr" in header and "psnr" in header
    assert all(row["ema_psnr"] > 0 for row in trainer.state.history)

    raw_state, raw_info = read_weights(run / "stage-s32.safetensors")
    ema_state, ema_info = read_weights(run / "stage-s32-ema.safetensors")
    assert ema_info.name == raw_info.name + "-ema"
    assert ema_info.training["weights"] == f"moving average, decay {DECAY}"
    assert "weights" not in raw_info.training
    live = trainer.ema.module.state_dict()
    for k, v in ema_state.items():
        torch.testing.assert_close(v.float(), live[k].float(), rtol=2e-3, atol=2e-3)
    assert any(not torch.equal(ema_state[k], raw_state[k]) for k in ema_state)

    # From the checkpoint on the command line: the same average.
    out = tmp_path / "ema.safetensors"
    assert main(["export", str(run), "--out", str(out), "--ema"]) == 0
    cli_state, cli_info = read_weights(out)
    assert cli_info.name == ema_info.name
    for k, v in cli_state.items():
        torch.testing.assert_close(v, ema_state[k], msg=k)


def test_resume_restores_the_average(
    tmp_path: Path,
    straight: tuple[Trainer, list[dict[str, torch.Tensor]]],
    ema_recipe: Recipe,
    make_settings: Any,
) -> None:
    first = Trainer(ema_recipe, make_settings(tmp_path, max_steps=3), resume=True)
    first.run()
    assert first.stopped and "ema" in load_checkpoint(tmp_path / "last.ckpt")
    resumed = Trainer(ema_recipe, make_settings(tmp_path), resume=True)
    resumed.run()
    assert resumed.state.steps == 4
    want = _float_state(straight[0].ema.module)
    got = _float_state(resumed.ema.module)
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_export_of_a_run_without_average_is_refused(
    tmp_path: Path,
    recipe: Recipe,
    make_settings: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = dataclasses.replace(recipe, stages=recipe.stages[:1])
    trainer = Trainer(plain, make_settings(tmp_path / "run", max_steps=1))
    trainer.run()
    assert trainer.ema is None
    out = tmp_path / "ema.safetensors"
    assert main(["export", str(tmp_path / "run"), "--out", str(out), "--ema"]) == 2
    assert "ema_decay" in capsys.readouterr().err
    assert not out.exists()
