"""End-to-end training on tiny data: learning, export, resume, stop by signal."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sr_core
from sr_core.training.config import Recipe, recipe_from_dict
from sr_core.training.export import export_run
from sr_core.training.loop import (
    CHECKPOINT,
    HISTORY,
    RunState,
    Trainer,
    _atomic_torch_save,
    load_checkpoint,
)

# The tiny recipe on 4 images, batch 2: 2 steps per epoch, 2 + 1 epochs.
TOTAL_STEPS = 6
TIMING = {"hours", "cpu_hours", "time"}


@pytest.fixture(scope="module")
def straight(
    tmp_path_factory: pytest.TempPathFactory, recipe: Recipe, make_settings: Any
) -> tuple[Trainer, float]:
    """One uninterrupted run of the tiny recipe, and its loss before training."""
    trainer = Trainer(recipe, make_settings(tmp_path_factory.mktemp("straight")))
    before = trainer.validate()["valid_loss"]
    trainer.run()
    return trainer, before


def test_tiny_run_learns_and_exports(
    tmp_path: Path, straight: tuple[Trainer, float], recipe: Recipe
) -> None:
    trainer, before = straight
    after = trainer.validate()["valid_loss"]
    assert not trainer.stopped
    assert trainer.state.stage == len(recipe.stages)
    assert trainer.state.steps == TOTAL_STEPS
    assert after < before, (before, after)

    run = trainer.out
    rows = (run / HISTORY).read_text().splitlines()
    assert rows[0].startswith("stage,epoch,steps,samples,train_loss,valid_loss")
    assert len(rows) == 1 + 3
    for stage in recipe.stages:
        assert (run / f"stage-{stage.name}.safetensors").is_file()

    weights = export_run(run, tmp_path / "tiny.safetensors", name="tiny")
    model = sr_core.load_model(weights, device="cpu", precision="fp32")
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    options = sr_core.UpscaleOptions(target=sr_core.Target.scale(2))
    out = sr_core.upscale(image, model, options)
    assert out.shape == (80, 96, 3) and out.dtype == np.uint8


def test_overfits_one_image(
    tmp_path: Path, make_settings: Any, make_image_dir: Any
) -> None:
    one = make_image_dir(tmp_path / "one", 1, size=(48, 40))
    train = tmp_path / "train"
    train.mkdir()
    for i in range(24):  # one image, 12 batches of 2 in a single epoch
        shutil.copy(one / "img0.png", train / f"copy{i}.png")
    recipe = recipe_from_dict(
        {
            "name": "overfit",
            "loss": "l1",
            "pretrained": False,
            "degradation": {"scale_min": 2.0, "scale_max": 2.0},
            "stages": [
                {"name": "a", "crop": 32, "batch_size": 2, "epochs": 1, "lr": 2e-3}
            ],
        }
    )
    settings = make_settings(tmp_path / "run", train_dir=str(train), valid_dir=str(one))
    trainer = Trainer(recipe, settings)
    losses: list[float] = []
    real_step = trainer._train_step
    trainer._train_step = lambda *a: losses.append(real_step(*a)) or losses[-1]
    trainer.run()
    assert len(losses) == 12
    early, late = np.mean(losses[:3]), np.mean(losses[-3:])
    assert late < 0.6 * early, losses


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_resume_matches_straight_run(
    tmp_path: Path,
    straight: tuple[Trainer, float],
    recipe: Recipe,
    make_settings: Any,
) -> None:
    # Stop after the last batch of epoch 1 (before its validation); finish
    # stage 1 alone (a recipe cut after it: the stage-boundary checkpoint);
    # stop in the middle of stage 2's epoch; then run to the end.
    first_only = dataclasses.replace(recipe, stages=recipe.stages[:1])
    for r, max_steps in ((recipe, 2), (first_only, None), (recipe, 5)):
        t = Trainer(r, make_settings(tmp_path, max_steps=max_steps), resume=True)
        t.run()
        assert t.state.steps == (max_steps or 4)
        assert t.stopped == (max_steps is not None)
    resumed = Trainer(recipe, make_settings(tmp_path), resume=True)
    resumed.run()
    assert not resumed.stopped

    ref = straight[0]
    assert resumed.state.steps == ref.state.steps == TOTAL_STEPS
    a, b = ref.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    got, want = _strip(resumed.state.history), _strip(ref.state.history)
    assert [r.keys() for r in got] == [r.keys() for r in want]
    for g, w in zip(got, want, strict=True):
        for k, v in w.items():
            assert g[k] == (pytest.approx(v, rel=1e-5) if isinstance(v, float) else v)


def test_resume_lengthens_a_finished_stage(
    tmp_path: Path,
    straight: tuple[Trainer, float],
    recipe: Recipe,
    make_settings: Any,
) -> None:
    # The finished run's checkpoint points past its last stage; a recipe that
    # asks one more epoch of that stage goes back to it and trains only that.
    run = tmp_path / "run"
    shutil.copytree(straight[0].out, run)
    last = recipe.stages[-1]
    longer = dataclasses.replace(
        recipe,
        stages=[*recipe.stages[:-1], dataclasses.replace(last, epochs=last.epochs + 1)],
    )
    trainer = Trainer(longer, make_settings(run), resume=True)
    assert (trainer.state.stage, trainer.state.epoch) == (len(recipe.stages) - 1, 1)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    assert not trainer.stopped
    assert trainer.state.stage == len(recipe.stages)
    assert trainer.state.steps == TOTAL_STEPS + 2  # one more epoch of 2 steps
    rows = trainer.state.history
    assert [(r["stage"], r["epoch"]) for r in rows[-2:]] == [
        (last.name, 1),
        (last.name, 2),
    ]
    assert len((run / HISTORY).read_text().splitlines()) == 1 + len(rows)
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # The same recipe again finds nothing left to do.
    again = Trainer(longer, make_settings(run), resume=True)
    assert again.state.stage == len(recipe.stages)
    again.run()
    assert again.state.steps == TOTAL_STEPS + 2


def test_resume_lengthens_an_earlier_stage_before_the_next_starts(
    tmp_path: Path, recipe: Recipe, make_settings: Any
) -> None:
    first_only = dataclasses.replace(recipe, stages=recipe.stages[:1])
    Trainer(first_only, make_settings(tmp_path)).run()
    first = recipe.stages[0]
    longer = dataclasses.replace(
        recipe,
        stages=[
            dataclasses.replace(first, epochs=first.epochs + 1),
            *recipe.stages[1:],
        ],
    )
    trainer = Trainer(longer, make_settings(tmp_path), resume=True)
    assert (trainer.state.stage, trainer.state.epoch) == (0, first.epochs)
    trainer.run()
    assert trainer.state.steps == TOTAL_STEPS + 2
    assert [(r["stage"], r["epoch"]) for r in trainer.state.history] == [
        (first.name, 1),
        (first.name, 2),
        (first.name, 3),
        (recipe.stages[1].name, 1),
    ]


def test_existing_checkpoint_needs_resume(
    straight: tuple[Trainer, float], recipe: Recipe, make_settings: Any
) -> None:
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(recipe, make_settings(straight[0].out))


def test_signal_checkpoints_then_stops(
    tmp_path: Path,
    recipe: Recipe,
    make_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trainer = Trainer(recipe, make_settings(tmp_path))
    real_step = trainer._train_step
    calls = []

    def step(*args: Any) -> float:
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args)

    monkeypatch.setattr(trainer, "_train_step", step)
    before = signal.getsignal(signal.SIGTERM)
    state = trainer.run()
    assert trainer.stopped
    assert (state.steps, state.batch) == (1, 1)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored

    ckpt = load_checkpoint(tmp_path / CHECKPOINT)
    keys = {"model", "optimizer", "state", "arch", "recipe", "settings", "torch_rng"}
    assert keys <= set(ckpt)
    saved = RunState.from_json(ckpt["state"])
    assert (saved.stage, saved.epoch, saved.batch, saved.steps) == (0, 0, 1, 1)
    assert saved.epoch_loss_count == 1


def test_checkpoint_state_without_new_fields_loads() -> None:
    # The state JSON written before epoch_loss_* and init_from existed.
    old = {
        "stage": 0,
        "epoch": 12,
        "batch": 40,
        "steps": 1240,
        "samples": 14880,
        "seconds": 1.0,
        "cpu_seconds": 2.0,
        "history": [],
    }
    state = RunState.from_json(json.dumps(old))
    assert dataclasses.asdict(state) == {
        **old,
        "epoch_loss_sum": 0.0,
        "epoch_loss_count": 0,
        "init_from": {},
    }


def test_checkpoint_write_sweeps_temp_files_a_kill_left(tmp_path: Path) -> None:
    stale = tmp_path / f".{CHECKPOINT}.k1ll3d"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".history.csv.tmp"  # not ours: left alone
    other.write_text("x")
    _atomic_torch_save({"steps": torch.tensor(3)}, tmp_path / CHECKPOINT)
    assert load_checkpoint(tmp_path / CHECKPOINT)["steps"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".history.csv.tmp",
        CHECKPOINT,
    ]
