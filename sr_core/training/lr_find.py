"""LR range test (fastai's ``lr_find``): loss against an exponentially rising LR.

A fresh model trains on one stage's data for up to ``steps`` batches while the
LR grows from ``start_lr`` to ``end_lr``.  Every layer group runs at the same
multiple of its share of the stage's LR slice (for ``slice(1e-5, 1e-3)`` the
groups get lr/100, lr/10 and lr), and the reported LR is the last group's.
The curve is written to ``lr_find.csv`` (and ``lr_find.png`` when matplotlib is
installed) in the run folder; an existing checkpoint there is never touched.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from sr_core.arch import UNetConfig, build_unet
from sr_core.model import resolve_device
from sr_core.training.config import Recipe, RecipeError
from sr_core.training.data import DataError, EpochSampler, PairDataset
from sr_core.training.loop import (
    Normalizer,
    RunSettings,
    autocast_dtype,
    build_optimizer,
    layer_param_groups,
    load_run_data,
    training_memory_format,
)
from sr_core.training.losses import build_loss

log = logging.getLogger(__name__)

CSV_NAME = "lr_find.csv"
PNG_NAME = "lr_find.png"
BETA = 0.98  # smoothing of the loss curve, as fastai
DIVERGE = 4.0  # stop once the smoothed loss exceeds this multiple of the best


@dataclass(frozen=True)
class LRFindResult:
    """The sweep: one entry per batch run (the last group's LR)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggestion: float | None
    csv_path: Path
    png_path: Path | None


def lr_at(step: int, steps: int, start_lr: float, end_lr: float) -> float:
    """Exponential sweep: ``start_lr`` at step 0, ``end_lr`` at step ``steps - 1``."""
    if steps <= 1:
        return start_lr
    return start_lr * (end_lr / start_lr) ** (step / (steps - 1))


def smooth_losses(losses: list[float], beta: float = BETA) -> list[float]:
    """Exponential moving average with bias correction (fastai's SmoothenValue)."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def suggest_lr(
    lrs: list[float], smoothed: list[float], skip_start: int = 10, skip_end: int = 5
) -> float | None:
    """The LR where the smoothed loss falls fastest against log(LR).

    Like fastai v1's ``recorder.plot(suggestion=True)``, the first and last few
    points are ignored (warm-up noise, divergence) when enough points remain.
    """
    if len(lrs) < 3:
        return None
    lo, hi = skip_start, len(lrs) - skip_end
    if hi - lo < 3:
        lo, hi = 0, len(lrs)
    x = np.log10(np.asarray(lrs[lo:hi]))
    y = np.asarray(smoothed[lo:hi])
    grads = np.gradient(y, x)
    return float(lrs[lo + int(np.argmin(grads))])


def lr_find(
    recipe: Recipe,
    settings: RunSettings,
    stage_index: int = 0,
    steps: int = 100,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
) -> LRFindResult:
    """Run the LR range test on stage ``stage_index`` of ``recipe``.

    Args:
        recipe: the recipe; the stage gives crop, batch size, frozen and LR slice.
        settings: data folders, run folder (``out_dir``), device, precision, seed.
        stage_index: 0-based index into ``recipe.stages``.
        steps: batches in the sweep (fewer if the loss diverges).
        start_lr: the last group's LR at the first batch.
        end_lr: the last group's LR at batch ``steps - 1``.

    Returns:
        the curve, the suggested LR and the files written.

    Raises:
        RecipeError: bad stage index or LR range.
        DataError: no usable images, or fewer than one batch.
        PretrainedWeightsUnavailableError: ImageNet weights needed but unreachable.
    """
    if not 0 <= stage_index < len(recipe.stages):
        raise RecipeError(
            f"--stage {stage_index}: the recipe has stages 0..{len(recipe.stages) - 1}"
        )
    if not 0 < start_lr < end_lr:
        raise RecipeError("lr-find needs 0 < --start-lr < --end-lr")
    if steps < 2:
        raise RecipeError("lr-find needs --steps of at least 2")
    stage = recipe.stages[stage_index]
    data = load_run_data(settings)
    for p, why in data.skipped:
        print(f"skipped {p}: {why}")
    if len(data.train) < stage.batch_size:
        raise DataError(
            f"Stage {stage.name} needs batch_size {stage.batch_size} images; "
            f"found {len(data.train)}"
        )
    device = resolve_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    memory_format = training_memory_format(device, amp)
    seed = settings.seed or 0  # a fresh model: no run or lineage to follow
    torch.manual_seed(seed)
    loss_fn = build_loss(recipe.loss).to(device)
    model = build_unet(
        UNetConfig(encoder=settings.encoder), pretrained_encoder=recipe.pretrained
    )
    model.to(device, memory_format=memory_format).train()
    norm = Normalizer().to(device)
    frozen = stage.frozen and recipe.pretrained
    groups = layer_param_groups(model, stage.group_lrs(), frozen, recipe.weight_decay)
    top = stage.group_lrs()[-1]
    for g in groups:
        g["ratio"] = g["max_lr"] / top
    # fastai's Adam default betas; lr_find does not schedule momentum.
    optimizer = build_optimizer(groups, device, betas=(0.9, 0.99))
    dataset = PairDataset(
        data.train,
        stage.crop,
        recipe.degradation,
        train=True,
        seed=seed + 1000 * stage_index,
    )
    sampler = EpochSampler(len(dataset), dataset.seed)

    def batches():  # noqa: ANN202
        epoch = 0
        while True:
            dataset.set_epoch(epoch)
            sampler.set_epoch(epoch)
            yield from DataLoader(
                dataset,
                stage.batch_size,
                sampler=sampler,
                drop_last=True,
                num_workers=settings.workers,
            )
            epoch += 1

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best = 0.0, math.inf
    for step, (x, y) in enumerate(itertools.islice(batches(), steps)):
        lr = lr_at(step, steps, start_lr, end_lr)
        for g in optimizer.param_groups:
            g["lr"] = lr * g["ratio"]
        x, y = x.to(device), y.to(device)
        xin = norm.norm(x).contiguous(memory_format=memory_format)
        if amp is None:
            pred = model(xin)
        else:
            with torch.autocast(device.type, dtype=amp):
                pred = model(xin)
        loss, _ = loss_fn(pred.float(), norm.norm(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        avg = BETA * avg + (1 - BETA) * value
        smooth = avg / (1 - BETA ** (step + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        if settings.progress and step % 10 == 0:
            print(f"lr-find step {step}: lr {lr:.3g} loss {value:.4f}", flush=True)
        if not math.isfinite(smooth) or smooth > DIVERGE * best:
            print(f"lr-find: loss diverged at lr {lr:.3g} (step {step}); stopping")
            break
        best = min(best, smooth)

    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / CSV_NAME
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "lr", "loss", "smooth_loss"])
        for i, row in enumerate(zip(lrs, losses, smoothed, strict=True)):
            writer.writerow([i, *row])
    suggestion = suggest_lr(lrs, smoothed)
    png_path = _plot(lrs, smoothed, suggestion, out / PNG_NAME, stage.name)
    print(f"wrote {csv_path}" + (f" and {png_path}" if png_path else ""))
    if suggestion is not None:
        print(
            f"suggested max LR (steepest descent of the smoothed loss): "
            f"{suggestion:.2g}; min loss at {lrs[int(np.argmin(smoothed))]:.2g} "
            f"(a common choice is a tenth of that)"
        )
    return LRFindResult(
        tuple(lrs), tuple(losses), tuple(smoothed), suggestion, csv_path, png_path
    )


def _plot(
    lrs: list[float],
    smoothed: list[float],
    suggestion: float | None,
    path: Path,
    title: str,
) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no %s (the CSV has the curve)", path)
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, smoothed)
    if suggestion is not None:
        ax.axvline(
            suggestion, color="tab:red", linestyle="--", label=f"{suggestion:.2g}"
        )
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (last layer group)")
    ax.set_ylabel("smoothed loss")
    ax.set_title(f"LR range test, stage {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
