"""Turn a training checkpoint into the inference weights file the core loads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.optim.swa_utils import AveragedModel

from sr_core.arch import UNetConfig, build_unet
from sr_core.training.loop import CHECKPOINT, load_checkpoint
from sr_core.weights import WeightsInfo, save_weights

if TYPE_CHECKING:
    from sr_core.training.loop import Trainer


def _summary(
    state: dict[str, Any],
    recipe: dict[str, Any],
    settings: dict[str, Any],
    n_train: int | None,
) -> dict[str, Any]:
    """The file's training record; a warm-started run adds its parent's counts,
    so steps, samples and hours are totals since random init."""
    history = state.get("history", [])
    last = history[-1] if history else {}
    parent = state.get("init_from", {}).get("training", {})
    summary = {
        "recipe": recipe,
        "data": {
            "train_dir": settings.get("train_dir"),
            "valid_dir": settings.get("valid_dir"),
            "train_images": n_train,
        },
        "stages_done": state.get("stage"),
        "steps": state.get("steps", 0) + parent.get("steps", 0),
        "samples_seen": state.get("samples", 0) + parent.get("samples_seen", 0),
        "hours": round(state.get("seconds", 0.0) / 3600 + parent.get("hours", 0.0), 3),
        "cpu_hours": round(
            state.get("cpu_seconds", 0.0) / 3600 + parent.get("cpu_hours", 0.0), 3
        ),
        "final_metrics": {k: v for k, v in last.items() if isinstance(v, (int, float))},
    }
    if state.get("init_from"):
        summary["init_from"] = state["init_from"]
    return summary


def export_run(
    source: str | Path,
    out: str | Path,
    name: str | None = None,
    half: bool = True,
    trainer: Trainer | None = None,
    ema: bool = False,
) -> Path:
    """Write fp16 (or fp32) safetensors weights with metadata for ``source``.

    Args:
        source: a run folder or a ``.ckpt`` file.
        out: weights file to write (atomically).
        name: model name stored in the file (default: recipe name + steps).
        half: store fp16 tensors (the core computes in fp32/bf16 anyway).
        trainer: export the live model of a running trainer instead of a file.
        ema: export the run's moving average of the weights (recipe
            ``ema_decay``) instead of the trained weights.

    Returns:
        the path written.

    Raises:
        FileNotFoundError: ``source`` has no checkpoint.
        ValueError: ``ema`` asked of a run that kept no average.
    """
    import dataclasses

    no_ema = f"{source} kept no weight average: train with ema_decay > 0 in the recipe"
    if trainer is not None:
        if ema and trainer.ema is None:
            raise ValueError(no_ema)
        model = trainer.ema.module if ema else trainer.model
        state = dataclasses.asdict(trainer.state)
        recipe = trainer.recipe.to_dict()
        settings = dataclasses.asdict(trainer.settings)
        arch = trainer.arch
        n_train: int | None = len(trainer.train_paths)
    else:
        path = Path(source)
        if path.is_dir():
            path = path / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(
                f"No checkpoint at {path}: give a run folder (the --out of "
                "`train`) or a .ckpt file."
            )
        ckpt = load_checkpoint(path)
        arch = UNetConfig.from_dict(json.loads(ckpt["arch"]))
        model = build_unet(arch)
        if ema:
            if "ema" not in ckpt:
                raise ValueError(no_ema)
            average = AveragedModel(model, use_buffers=True)
            average.load_state_dict(ckpt["ema"])
            model = average.module
        else:
            model.load_state_dict(ckpt["model"])
        state = json.loads(ckpt["state"])
        recipe = json.loads(ckpt["recipe"])
        settings = json.loads(ckpt["settings"])
        n_train = None
    created = time.strftime("%Y-%m-%d")
    summary = _summary(state, recipe, settings, n_train)
    if ema:
        summary["weights"] = f"moving average, decay {recipe.get('ema_decay')}"
    info = WeightsInfo(
        arch=arch,
        name=name
        or f"upscaler-{arch.encoder}-{recipe['name']}-{summary['steps']}steps"
        + ("-ema" if ema else ""),
        created=created,
        resize_filter=recipe["degradation"]["up_filter"],
        training=summary,
    )
    return save_weights(out, model, info, half=half)
