"""Turn a training checkpoint (or several weights files) into the weights file
the core loads."""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.swa_utils import AveragedModel

from sr_core.arch import UNetConfig, build_unet
from sr_core.errors import WeightsMismatchError
from sr_core.training.loop import CHECKPOINT, load_checkpoint
from sr_core.weights import (
    WeightsInfo,
    build_model_from_weights,
    read_weights,
    save_weights,
)

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
        try:
            ckpt = load_checkpoint(path)
            arch = UNetConfig.from_dict(json.loads(ckpt["arch"]))
            state = json.loads(ckpt["state"])
            recipe = json.loads(ckpt["recipe"])
            settings = json.loads(ckpt["settings"])
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError) as exc:
            raise ValueError(
                f"{path} is not a training checkpoint this version reads "
                f"(damaged, cut short or from another program: {exc!r})"
            ) from exc
        model = build_unet(arch)
        if ema:
            if "ema" not in ckpt:
                raise ValueError(no_ema)
            average = AveragedModel(model, use_buffers=True)
            average.load_state_dict(ckpt["ema"])
            model = average.module
        else:
            model.load_state_dict(ckpt["model"])
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


def average_weights(
    sources: list[str | Path],
    out: str | Path,
    shares: list[float] | None = None,
    name: str | None = None,
    half: bool = True,
) -> Path:
    """Write the weighted average of weights files of one architecture.

    Interpolating a fine-tuned model with the model it started from (a "model
    soup") can keep some of the gains of both.  The new file keeps the first
    file's training record and lists what was averaged.

    Args:
        sources: two or more weights files with the same architecture.
        out: weights file to write (atomically).
        shares: one non-negative weight per file, normalised to sum to 1
            (default: equal).
        name: model name stored in the file (default: the first file's + "-avg").
        half: store fp16 tensors.

    Raises:
        ValueError: fewer than two files, or bad shares.
        WeightsMismatchError: the files hold different architectures.
    """
    if len(sources) < 2:
        raise ValueError("give at least two weights files to average")
    shares = [1.0] * len(sources) if shares is None else [float(s) for s in shares]
    if len(shares) != len(sources):
        raise ValueError(f"{len(shares)} shares given for {len(sources)} files")
    if any(s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError("shares must be non-negative and not all zero")
    shares = [s / sum(shares) for s in shares]

    files = [read_weights(source) for source in sources]
    first_info = files[0][1]
    models = []
    for source, (state, info) in zip(sources, files, strict=True):
        if info.arch != first_info.arch:
            raise WeightsMismatchError(
                f"{source} holds a different architecture from {sources[0]} "
                f"({info.arch.to_dict()} vs {first_info.arch.to_dict()}): only "
                "files of one architecture can be averaged."
            )
        models.append(build_model_from_weights(state, info, str(source)))
    states = [model.state_dict() for model in models]
    averaged = dict(states[0])
    with torch.no_grad():
        for key, tensor in averaged.items():
            if tensor.is_floating_point():  # counters keep the first file's value
                averaged[key] = sum(
                    share * state[key]
                    for share, state in zip(shares, states, strict=True)
                )
    models[0].load_state_dict(averaged)
    training = {
        **first_info.training,
        "averaged_from": [
            {"file": Path(source).name, "name": info.name, "share": round(share, 6)}
            for source, share, (_, info) in zip(sources, shares, files, strict=True)
        ],
    }
    info = dataclasses.replace(
        first_info,
        name=name or f"{first_info.name}-avg",
        created=time.strftime("%Y-%m-%d"),
        training=training,
    )
    return save_weights(out, models[0], info, half=half)
