"""scripts/ship_weights.py: the model card shows every run of a warm-started model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sr_core.arch import UNetConfig
from sr_core.weights import WeightsInfo

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "ship_weights", ROOT / "scripts" / "ship_weights.py"
)
ship_weights = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship_weights)


def _stage(name: str, epochs: int) -> dict:
    return {
        "name": name,
        "crop": 96,
        "batch_size": 4,
        "epochs": epochs,
        "lr": 1e-3,
        "pct_start": 0.25,
    }


def _scores(model_x4: float) -> dict:
    one = {
        "bicubic_psnr": 26.0,
        "bicubic_ssim": 0.7,
        "lanczos_psnr": 26.2,
        "lanczos_ssim": 0.71,
        "model_psnr": model_x4,
        "model_ssim": 0.75,
    }
    return {label: one for label, _, _ in ship_weights.SETTINGS}


def test_card_lists_each_run_and_keeps_quality_on_the_shipped_file():
    first = {"recipe": {"name": "cpu", "stages": [_stage("a96", 25)]}, "steps": 100}
    second = {
        "recipe": {"name": "cpu-refine", "stages": [_stage("r128", 5)]},
        "steps": 150,
        "init_from": {"file": "a.safetensors", "name": "a", "training": first},
    }
    assert ship_weights.lineage(second) == [first, second]
    info = WeightsInfo(arch=UNetConfig(encoder="resnet18"), name="b", training=second)
    manifest = {
        "default": "a.safetensors",
        "files": {"a.safetensors": {"scores": _scores(27.5)}},
        "evaluations": [
            {
                "date": "d1",
                "name": "a",
                "steps": 100,
                "hours": 1.0,
                "scores": _scores(27.5),
                "shipped": True,
            },
            {
                "date": "d2",
                "name": "b",
                "steps": 150,
                "hours": 2.0,
                "scores": _scores(27.9),
                "shipped": False,
            },  # a later try that was not shipped
        ],
    }
    card = ship_weights.model_card(info, manifest)
    assert "| 1 | cpu | a96 | 96 | 4 | 25 |" in card
    assert "| 2 | cpu-refine | r128 | 96 | 4 | 5 |" in card
    assert "| x4 | 26.00 / 0.7000 | 26.20 / 0.7100 | 27.50 / 0.7500 |" in card
    assert "| d1 | a | yes | 100 | 1.00 |" in card
    assert "| d2 | b | no | 150 | 2.00 |" in card
    assert "moving average" not in card

    averaged = {**second, "weights": "moving average, decay 0.999"}
    info = WeightsInfo(arch=UNetConfig(encoder="resnet18"), name="b", training=averaged)
    card = ship_weights.model_card(info, manifest)
    assert "- Weights: the last run's moving average, decay 0.999" in card


def _per_setting(x2: float, x4: float, jpeg: float) -> dict:
    return {
        label: {"model_psnr": v}
        for (label, _, _), v in zip(ship_weights.SETTINGS, (x2, x4, jpeg), strict=True)
    }


def test_gate_ships_only_clear_improvements() -> None:
    shipped = _per_setting(31.55, 27.86, 26.42)
    gate = ship_weights.clearly_better
    assert gate(_per_setting(31.55, 27.96, 26.42), shipped)[0]  # x4 +0.10
    assert gate(_per_setting(31.85, 27.95, 26.41), shipped)[0]  # x2 +0.30
    assert not gate(_per_setting(31.63, 27.87, 26.38), shipped)[0]  # +0.08 at best
    assert not gate(_per_setting(31.85, 27.95, 26.30), shipped)[0]  # jpeg -0.12
    assert gate(_per_setting(31.61, 27.89, 26.47), shipped)[0]  # +0.03..0.06 in all
    assert not gate(_per_setting(31.61, 27.87, 26.47), shipped)[0]  # x4 only +0.01
    assert gate(_per_setting(31.61, 27.883, 26.434), shipped)[0]  # x4 +0.023, all +0.01
    assert not gate(_per_setting(31.61, 27.883, 26.425), shipped)[0]  # jpeg +0.005
    assert not gate(_per_setting(31.61, 27.876, 26.47), shipped)[0]  # x4 +0.016
    assert gate(_per_setting(0, 0, 0), None)[0]  # nothing shipped yet
    ok, summary = gate(_per_setting(31.55, 27.86, 26.42), shipped)
    assert not ok and "x4 +0.000 dB" in summary


def test_shipping_a_file_already_in_weights_keeps_it(tmp_path: Path) -> None:
    """The export hint writes weights/my-model.safetensors; shipping it must not
    delete it before copying (that left weights/ empty)."""
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "old.safetensors").write_bytes(b"old")
    candidate = folder / "my-model.safetensors"
    candidate.write_bytes(b"new")
    dest = ship_weights.replace_shipped(candidate, "model-2.safetensors", folder)
    assert dest.read_bytes() == b"new"
    assert sorted(p.name for p in folder.iterdir()) == ["model-2.safetensors"]
    # Shipping it again under its own name is a no-op, not a deletion.
    ship_weights.replace_shipped(dest, dest.name, folder)
    assert dest.read_bytes() == b"new"
