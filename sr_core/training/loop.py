"""The training loop: stages of one-cycle fits, checkpoints, resume, DDP.

Run under ``torchrun --nproc_per_node=N`` it trains data-parallel (gloo on CPU,
nccl on CUDA); only rank 0 validates and writes files.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
import logging
import math
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from sr_core.allocator import keep_freed_memory
from sr_core.arch import SuperResUNet, UNetConfig, build_unet
from sr_core.model import cpu_supports_bf16, resolve_device
from sr_core.training.config import Recipe, Stage
from sr_core.training.data import (
    DataError,
    EpochSampler,
    PairDataset,
    scan_images,
    split_folder,
)
from sr_core.training.losses import build_loss
from sr_core.training.schedule import one_cycle
from sr_core.weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_model_from_weights,
    read_weights,
)

log = logging.getLogger(__name__)

CHECKPOINT = "last.ckpt"
HISTORY = "history.csv"
VALID_CROP = 192
VALID_SEED = 0  # the same validation pairs in every run, so in-loop figures compare


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not the recipe."""

    train_dir: str
    out_dir: str
    valid_dir: str | None = None
    encoder: str = "resnet34"
    # None: a resumed run keeps its own; a warm start takes its weights' step
    # count (new crops each refinement); otherwise 0.
    seed: int | None = None
    workers: int = 1
    device: str = "auto"
    precision: str = "auto"
    checkpoint_minutes: float = 10.0
    max_steps: int | None = None
    valid_limit: int | None = None
    progress: bool = True
    valid_crop: int = VALID_CROP  # side of the centre crops validated on
    init_weights: str | None = None  # a new run starts from this weights file


@dataclass
class RunState:
    """Where a run is; saved in every checkpoint."""

    stage: int = 0
    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    steps: int = 0  # optimiser steps over the whole run
    samples: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # Added later (absent from older checkpoints, so they default): the running
    # sum and count of this epoch's batch losses, so a resumed epoch still
    # reports the mean over all of its batches.
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    # A run warm-started from a weights file: that file's name and training
    # summary, so exports report the whole lineage (steps, hours, stages).
    init_from: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> RunState:
        """Read the checkpoint's ``state``, ignoring keys this version lacks."""
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            log.warning("Checkpoint state has unknown keys %s (ignored)", unknown)
        return cls(**{k: v for k, v in data.items() if k in names})


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 on CPUs with bf16 kernels and capable GPUs, fp16 on other GPUs."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_supports_bf16() else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def training_memory_format(
    device: torch.device, amp_dtype: torch.dtype | None
) -> torch.memory_format:
    """channels_last where it pays: GPUs and CPU bf16 (oneDNN/AMX). A plain fp32
    CPU step of the r34 U-Net is faster contiguous (5.5 s vs 7.7 s, batch 8 at
    128², 2 AVX2 cores)."""
    if device.type == "cpu" and amp_dtype is None:
        return torch.contiguous_format
    return torch.channels_last


class Normalizer(nn.Module):
    """[0, 1] RGB ↔ ImageNet-normalised tensors, on the model's device."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denorm(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def psnr_y_batch(
    pred: torch.Tensor, target: torch.Tensor, border: int = 4
) -> torch.Tensor:
    """Per-image PSNR on BT.601 Y of [0, 1] RGB batches (pred quantised to 8 bit)."""
    coef = torch.tensor([65.481, 128.553, 24.966], device=pred.device).view(1, 3, 1, 1)
    p = (pred.clamp(0, 1) * 255).round() / 255
    yp = (p * coef).sum(1) + 16
    yt = (target * coef).sum(1) + 16
    if border:
        yp = yp[:, border:-border, border:-border]
        yt = yt[:, border:-border, border:-border]
    mse = ((yp - yt) ** 2).mean(dim=(1, 2)).clamp_min(1e-10)
    return 10 * torch.log10(255.0**2 / mse)


def layer_param_groups(
    model: SuperResUNet, lrs: list[float], frozen: bool, wd: float
) -> list[dict[str, Any]]:
    """Optimiser groups per layer group, fastai's ``freeze()`` when ``frozen``.

    Frozen means the two encoder groups train only their BatchNorm layers
    (fastai's ``train_bn=True``); every other parameter is set trainable, so a
    frozen stage followed by an unfrozen one unfreezes everything.

    Returns:
        torch param-group dicts with ``lr`` and ``max_lr`` (the group's peak).
    """
    groups = []
    for gi, (modules, lr) in enumerate(zip(model.layer_groups(), lrs, strict=True)):
        params = []
        for mod in modules:
            for sub in mod.modules():
                direct = list(sub.parameters(recurse=False))
                trainable = not (frozen and gi < 2) or isinstance(sub, _BatchNorm)
                for p in direct:
                    p.requires_grad_(trainable)
                    if trainable:
                        params.append(p)
        if params:
            groups.append(
                {"params": params, "lr": lr, "max_lr": lr, "weight_decay": wd}
            )
    return groups


def build_optimizer(
    groups: list[dict[str, Any]],
    device: torch.device,
    betas: tuple[float, float],
    state: dict[str, Any] | None = None,
) -> torch.optim.AdamW:
    """AdamW (decoupled wd), fused into one kernel per step on CPU and CUDA.

    The multi-tensor AdamW runs sqrt, div, lerp... over the 41M parameters
    pass after pass; the fused kernel does the same update in one, about 4x
    faster on this CPU (a whole 128 px, batch 8 step: ~5% faster).  ``state`` (a saved
    ``state_dict``, from either implementation) is loaded, keeping the fused
    setting, since ``load_state_dict`` restores the saved groups' flags.  The
    recipe's peak LR and weight decay win over the saved ones, so a resumed
    stage whose recipe was edited follows the edit.
    """
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(groups, betas=betas, eps=1e-8, fused=fused or None)
    if state is not None:
        optimizer.load_state_dict(state)
        for group, fresh in zip(optimizer.param_groups, groups, strict=True):
            group["fused"], group["foreach"] = fused or None, None
            for key in ("max_lr", "weight_decay"):
                if key in fresh:
                    group[key] = fresh[key]
    return optimizer


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """Write via a temp file, flushed to disk before the rename, so a crash or
    power loss leaves the old file or the new one. Temp files a SIGKILL left
    behind (~0.6 GB each for a checkpoint) are removed first."""
    for stale in path.parent.glob(f".{path.name}.*"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint safely (tensors and plain Python values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class RunData:
    """The image paths a run trains and validates on."""

    train: tuple[Path, ...]
    valid: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]


def load_run_data(settings: RunSettings) -> RunData:
    """Scan the train (and valid) folders; without ``valid_dir``, a seeded 10% split.

    Unreadable or too-small files are skipped and listed in ``skipped``.

    Raises:
        DataError: a folder is missing or holds no usable image.
    """
    if settings.valid_limit is not None and settings.valid_limit < 1:
        raise DataError("--valid-limit must be at least 1")
    folder = scan_images(settings.train_dir)
    if settings.valid_dir:
        train, valid = folder, scan_images(settings.valid_dir)
    else:
        train, valid = split_folder(folder, 0.1, seed=42)
    train_paths = train.paths
    held_out = {p.resolve() for p in valid.paths}
    if any(p.resolve() in held_out for p in train_paths):
        # e.g. --data data --valid data/valid: the folder scan recurses.
        train_paths = tuple(p for p in train_paths if p.resolve() not in held_out)
        log.warning(
            "%d validation image(s) are also under %s: left out of training",
            len(train.paths) - len(train_paths),
            settings.train_dir,
        )
    if not train_paths or not valid.paths:
        raise DataError(
            f"{settings.train_dir} must hold at least 2 usable images (one to "
            "train on and one to validate on), or give --valid"
        )
    return RunData(
        train_paths,
        valid.paths[: settings.valid_limit],
        (*train.skipped, *valid.skipped),
    )


def _worker_init(_worker_id: int) -> None:
    # Signals sent to a whole process group (Ctrl-C in a terminal, torchrun
    # stopping its ranks) must reach only the trainer, which finishes its step,
    # checkpoints and then shuts its workers down. A worker killed under it
    # instead raises "DataLoader worker ... is killed by signal" in the middle of
    # the step. In a session of its own the worker still exits when the trainer
    # stops it or dies.
    if hasattr(os, "setsid"):
        os.setsid()
    else:  # pragma: no cover - Windows
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Trainer:
    """Runs a recipe's stages; ``run()`` returns when done, stopped or at max_steps.

    Args:
        recipe: what to train.
        settings: data folders, run folder, device and the like.
        resume: continue from ``<out>/last.ckpt`` if it exists (a new run if not).

    Raises:
        FileExistsError: the run folder has a checkpoint and ``resume`` is False.
        DataError: no usable images, or fewer than a stage's batch needs.
        PretrainedWeightsUnavailableError: ImageNet weights needed but unreachable.
    """

    def __init__(
        self, recipe: Recipe, settings: RunSettings, resume: bool = False
    ) -> None:
        self.recipe, self.settings = recipe, settings
        self.out = Path(settings.out_dir)
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.is_main = self.rank == 0
        self.device = resolve_device(settings.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # large activations: reuse freed memory per step
        self._owns_group = False
        if self.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                dist.init_process_group(backend)
                self._owns_group = True
        self.amp_dtype = autocast_dtype(self.device, settings.precision)
        self.memory_format = training_memory_format(self.device, self.amp_dtype)
        self.arch = UNetConfig(encoder=settings.encoder)
        self.state = RunState()
        self.ckpt: dict[str, Any] | None = None
        ckpt_path = self.out / CHECKPOINT
        if ckpt_path.exists():
            if not resume:
                raise FileExistsError(
                    f"{ckpt_path} exists: pass --resume to continue that run, or "
                    "choose another --out folder."
                )
            self.ckpt = load_checkpoint(ckpt_path)
            self.arch = UNetConfig.from_dict(json.loads(self.ckpt["arch"]))
            self.state = RunState.from_json(self.ckpt["state"])
            self._check_resume(self.ckpt)
            self._reopen_lengthened_stage()
        elif resume and self.is_main:
            log.info("No checkpoint in %s: starting a new run", self.out)
        init_model = None
        if self.ckpt is None and settings.init_weights:
            init_model = self._read_init_weights(settings.init_weights)
        self._resolve_seed()
        torch.manual_seed(self.settings.seed)
        # Cheap checks first: data, then the loss (it may need to download VGG).
        self._prepare_data()
        self.loss_fn = build_loss(recipe.loss).to(self.device)
        # A resumed model takes its weights from the checkpoint: don't fetch ImageNet.
        self.model = (
            init_model
            if init_model is not None
            else build_unet(
                self.arch, pretrained_encoder=recipe.pretrained and self.ckpt is None
            )
        )
        self.model.to(self.device, memory_format=self.memory_format)
        self.norm = Normalizer().to(self.device)
        if self.ckpt is not None:
            self.model.load_state_dict(self.ckpt["model"])
            torch.set_rng_state(self.ckpt["torch_rng"])
        self.ema = self._build_ema()
        self._stop = False  # set by a signal on this rank
        self.stopped = False  # agreed by all ranks: run() returned early
        self._old_handlers: dict[int, Any] = {}
        self.scaler = torch.amp.GradScaler(
            self.device.type,
            enabled=self.device.type == "cuda" and self.amp_dtype == torch.float16,
        )

    def _resolve_seed(self) -> None:
        """Fix ``settings.seed`` when --seed was not given (see RunSettings)."""
        if self.settings.seed is not None:
            return
        if self.ckpt is not None:
            seed = json.loads(self.ckpt["settings"]).get("seed", 0)
        else:
            seed = self.state.init_from.get("training", {}).get("steps", 0)
        self.settings = dataclasses.replace(self.settings, seed=int(seed or 0))
        if self.is_main and seed:
            log.info("Data seed %s (see --seed)", seed)

    def _build_ema(self) -> AveragedModel | None:
        """The moving average of the weights, if the recipe asks for one.

        It averages BatchNorm statistics too (``use_buffers``), so it can be
        validated and exported as it is. A resumed run restores it from the
        checkpoint; a checkpoint written without one restarts it from the
        current weights.
        """
        if not self.recipe.ema_decay or not self.is_main:
            return None
        ema = AveragedModel(
            self.model,
            multi_avg_fn=get_ema_multi_avg_fn(self.recipe.ema_decay),
            use_buffers=True,
        )
        if self.ckpt is not None:
            if "ema" in self.ckpt:
                ema.load_state_dict(self.ckpt["ema"])
            else:
                log.warning(
                    "The checkpoint has no weight average: it restarts from "
                    "the current weights"
                )
        return ema

    def _read_init_weights(self, path: str) -> SuperResUNet:
        """The model (fp32) of the weights file a new run starts from.

        The file's architecture wins over ``--encoder``; its name and training
        summary go into the run state for the lineage.

        Raises:
            WeightsError: missing, damaged, or not a U-Net this code builds.
        """
        state, info = read_weights(path)
        if info.arch.encoder != self.settings.encoder and self.is_main:
            log.warning(
                "%s holds a %s U-Net; --encoder %s is ignored",
                path,
                info.arch.encoder,
                self.settings.encoder,
            )
        self.arch = info.arch
        self.settings = dataclasses.replace(self.settings, encoder=info.arch.encoder)
        self.state.init_from = {
            "file": Path(path).name,
            "name": info.name,
            "training": dict(info.training),
        }
        if self.is_main:
            print(f"starting from {path} ({info.name})", flush=True)
        return build_model_from_weights(state, info, source=path)

    def _check_resume(self, ckpt: dict[str, Any]) -> None:
        """Warn where this invocation differs from the run being resumed."""
        if not self.is_main:
            return
        saved = json.loads(ckpt["recipe"])
        now = json.loads(json.dumps(self.recipe.to_dict()))
        diff = sorted(
            k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k)
        )
        if diff:
            log.warning(
                "Resuming with a recipe that differs from the checkpoint's in %s",
                diff,
            )
        world = int(ckpt.get("world", 1))
        if world != self.world:
            log.warning(
                "The run was trained with %d process(es), now %d: steps per epoch, "
                "the LR schedule and the data order change from here on",
                world,
                self.world,
            )
        old = json.loads(ckpt["settings"])
        given = self.settings.seed
        if given is not None and old.get("seed", given) != given:
            log.warning(
                "Resuming with --seed %s but the run used %s: the data order changes",
                self.settings.seed,
                old["seed"],
            )
        if self.settings.encoder != self.arch.encoder:
            log.warning(
                "The checkpoint's encoder is %s; --encoder %s is ignored",
                self.arch.encoder,
                self.settings.encoder,
            )
            self.settings = dataclasses.replace(
                self.settings, encoder=self.arch.encoder
            )

    def _reopen_lengthened_stage(self) -> None:
        """Continue a finished stage whose recipe now asks for more epochs.

        The checkpoint written as a stage ends already points at the next
        stage; if that one has not started and the recipe lengthens the one
        before, go back to it. Its optimiser comes back and the one-cycle
        schedule picks up at the same step of the longer cycle (so the LR
        rises again from near zero to that point of the new anneal).
        """
        st = self.state
        if st.stage == 0 or st.epoch or st.batch or st.stage > len(self.recipe.stages):
            return
        stage = self.recipe.stages[st.stage - 1]
        rows = [r for r in st.history if r.get("stage") == stage.name]
        done = int(rows[-1]["epoch"]) if rows else stage.epochs
        if done >= stage.epochs:
            return
        if self.is_main:
            log.warning(
                "Stage %s finished after %d epochs and the recipe now asks for %d: "
                "continuing it",
                stage.name,
                done,
                stage.epochs,
            )
        st.stage -= 1
        st.epoch = done

    # -- data -------------------------------------------------------------------
    def _prepare_data(self) -> None:
        data = load_run_data(self.settings)
        self.skipped = list(data.skipped)
        self.train_paths = data.train
        self.valid_paths = data.valid
        per_rank = math.ceil(len(self.train_paths) / self.world)
        for stage in self.recipe.stages[self.state.stage :]:
            if per_rank < stage.batch_size:
                raise DataError(
                    f"Stage {stage.name} has batch_size {stage.batch_size} "
                    f"{'per process ' if self.world > 1 else ''}but only "
                    f"{len(self.train_paths)} training images were found"
                    f"{f' for {self.world} processes' if self.world > 1 else ''}: "
                    "add images or lower batch_size in the recipe."
                )
        if self.is_main:
            if self.skipped:
                print(f"skipped {len(self.skipped)} unusable file(s):")
                for p, why in self.skipped:
                    print(f"  {p}: {why}")
            print(
                f"data: {len(self.train_paths)} train, {len(self.valid_paths)} valid "
                f"images; device {self.device}, autocast {self.amp_dtype}, "
                f"world {self.world}",
                flush=True,
            )

    # -- helpers ------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = self.norm.norm(x).contiguous(memory_format=self.memory_format)
        with self._autocast():
            return model(x)

    def _install_signals(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            if self._stop:
                # A second signal: the user does not want to wait for a checkpoint.
                raise KeyboardInterrupt
            log.warning(
                "Signal %s: checkpointing after this step, then stopping "
                "(send it again to quit at once)",
                signum,
            )
            self._stop = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    def _sync(self, loss: float) -> tuple[float, bool]:
        """Mean loss over ranks, and whether any rank was asked to stop.

        All ranks must leave the loop at the same step, or the ones still
        training wait forever in the next all-reduce.
        """
        if self.world == 1:
            return loss, self._stop
        t = torch.tensor([loss, float(self._stop)], dtype=torch.float64)
        if self.device.type == "cuda":
            t = t.to(self.device)
        dist.all_reduce(t)
        return float(t[0]) / self.world, bool(t[1] > 0)

    def checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        """Write ``last.ckpt`` atomically (rank 0 only)."""
        if not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "state": json.dumps(dataclasses.asdict(self.state)),
            "arch": json.dumps(self.arch.to_dict()),
            "recipe": json.dumps(self.recipe.to_dict()),
            "settings": json.dumps(dataclasses.asdict(self.settings)),
            "torch_rng": torch.get_rng_state(),
            "world": self.world,  # added later: absent from older checkpoints
        }
        if self.scaler.is_enabled():
            data["scaler"] = self.scaler.state_dict()
        if self.ema is not None:
            data["ema"] = self.ema.state_dict()
        _atomic_torch_save(data, self.out / CHECKPOINT)

    # -- main loop ----------------------------------------------------------------
    def run(self) -> RunState:
        """Train from the current state to the end of the recipe.

        Returns early, after writing a checkpoint, on SIGINT/SIGTERM or at
        ``max_steps``; ``self.stopped`` then is True.
        """
        self._install_signals()
        try:
            while self.state.stage < len(self.recipe.stages):
                if not self._run_stage(self.recipe.stages[self.state.stage]):
                    break
            if self.world > 1:
                dist.barrier()
        finally:
            self._restore_signals()
        return self.state

    def close(self) -> None:
        """Leave the process group this trainer started (DDP)."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    def _steps_per_epoch(self, stage: Stage) -> int:
        # Each rank gets ceil(n / world) samples (padded) and drops the last
        # partial batch, as the DataLoader below does.
        per_rank = math.ceil(len(self.train_paths) / self.world)
        return per_rank // stage.batch_size

    def _wrap(self) -> nn.Module:
        # Built per stage, after requires_grad is set: DDP only reduces the
        # parameters that require grad when it is constructed.
        if self.world == 1:
            return self.model
        ids = [self.device.index] if self.device.type == "cuda" else None
        # channels_last 1x1 convs (the head) have ambiguous strides; DDP warns on
        # every step that their grads do not match its buckets. Harmless here.
        warnings.filterwarnings(
            "ignore", message="Grad strides do not match bucket view strides"
        )
        return nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _run_stage(self, stage: Stage) -> bool:
        """Train one stage from the current state; False if stopped early.

        A finished stage advances ``state.stage``, exports its weights
        (``stage-<name>.safetensors``) and checkpoints.
        """
        frozen = stage.frozen and self.recipe.pretrained
        groups = layer_param_groups(
            self.model, stage.group_lrs(), frozen, self.recipe.weight_decay
        )
        st = self.state
        # At epoch 0 batch 0 the checkpoint was written as the previous stage
        # ended: its optimiser is that stage's, and this one starts fresh.
        resume_opt = self.ckpt is not None and bool(st.epoch or st.batch)
        optimizer = build_optimizer(
            groups,
            self.device,
            betas=(0.95, 0.99),
            state=self.ckpt["optimizer"] if resume_opt else None,
        )
        if resume_opt and "scaler" in self.ckpt and self.scaler.is_enabled():
            self.scaler.load_state_dict(self.ckpt["scaler"])
        self.ckpt = None  # later stages start fresh; free the memory
        model = self._wrap()
        spe = self._steps_per_epoch(stage)
        total = spe * stage.epochs
        dataset = PairDataset(
            self.train_paths,
            stage.crop,
            self.recipe.degradation,
            train=True,
            seed=self.settings.seed + 1000 * self.state.stage,
        )
        sampler = EpochSampler(len(dataset), dataset.seed, self.rank, self.world)
        last_ckpt = last_print = time.monotonic()
        while st.epoch < stage.epochs:
            t_epoch, c_epoch = time.monotonic(), time.process_time()
            # batch == spe: stopped after the epoch's last batch, before its
            # validation; nothing left to train in this epoch.
            if st.batch < spe:
                dataset.set_epoch(st.epoch)
                sampler.set_epoch(st.epoch, start=st.batch * stage.batch_size)
                workers = self.settings.workers
                loader = DataLoader(
                    dataset,
                    stage.batch_size,
                    sampler=sampler,
                    drop_last=True,
                    num_workers=workers,
                    worker_init_fn=_worker_init if workers > 0 else None,
                )
                model.train()
                bar = tqdm(
                    total=spe,
                    initial=st.batch,
                    leave=False,
                    desc=f"{stage.name} {st.epoch + 1}/{stage.epochs}",
                    disable=not (self.is_main and self.settings.progress),
                )
                for x, y in self._batches(loader, spe - st.batch):
                    k = st.epoch * spe + st.batch
                    for g in optimizer.param_groups:
                        lr, beta1 = one_cycle(k, total, g["max_lr"], stage.pct_start)
                        g["lr"] = lr
                        g["betas"] = (beta1, 0.99)
                    loss, stop = self._sync(self._train_step(model, optimizer, x, y))
                    if self.ema is not None:
                        self.ema.update_parameters(self.model)
                    st.epoch_loss_sum += loss
                    st.epoch_loss_count += 1
                    st.batch += 1
                    st.steps += 1
                    st.samples += stage.batch_size * self.world
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                    now = time.monotonic()
                    if (
                        self.is_main
                        and not self.settings.progress
                        and now - last_print > 60
                    ):
                        last_print = now
                        print(
                            f"{stage.name} epoch {st.epoch + 1}/{stage.epochs} "
                            f"batch {st.batch}/{spe} step {st.steps} "
                            f"loss {loss:.4f}",
                            flush=True,
                        )
                    stop = stop or (
                        self.settings.max_steps is not None
                        and st.steps >= self.settings.max_steps
                    )
                    due = now - last_ckpt > 60 * self.settings.checkpoint_minutes
                    if stop or (due and st.batch < spe):
                        self._account(t_epoch, c_epoch)
                        t_epoch, c_epoch = time.monotonic(), time.process_time()
                        self.checkpoint(optimizer)
                        last_ckpt = now
                    if stop:
                        bar.close()
                        self.stopped = True
                        return False
                bar.close()
                del loader
            self._account(t_epoch, c_epoch)
            row = self._end_epoch(stage)
            st.epoch += 1
            st.batch = 0
            st.epoch_loss_sum, st.epoch_loss_count = 0.0, 0
            if self.is_main:
                st.history.append(row)
                self._log_row(row)
            if st.epoch < stage.epochs:  # the last one is saved below
                self.checkpoint(optimizer)
                last_ckpt = time.monotonic()
        st.stage += 1
        st.epoch = st.batch = 0
        if self.is_main:
            self._export_stage_weights(stage)
        self.checkpoint(optimizer)
        return True

    def _batches(
        self, loader: DataLoader[Any], n: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in itertools.islice(loader, n):
            yield x.to(self.device), y.to(self.device)

    def _train_step(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> float:
        pred = self._forward(model, x)
        loss, _ = self.loss_fn(pred.float(), self.norm.norm(y))
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()
        return float(loss.detach())

    def _account(self, t0: float, c0: float) -> None:
        self.state.seconds += time.monotonic() - t0
        self.state.cpu_seconds += time.process_time() - c0

    @torch.no_grad()
    def validate(
        self, limit: int | None = None, model: nn.Module | None = None
    ) -> dict[str, float]:
        """Mean loss parts and PSNR-Y (model and plain resize) on fixed crops.

        ``model`` defaults to the trained one (the weight average is another).
        """
        model = self.model if model is None else model
        was_training = model.training
        model.eval()
        dataset = PairDataset(
            self.valid_paths,
            self.settings.valid_crop,
            self.recipe.degradation,
            train=False,
            seed=VALID_SEED,
        )
        loader = DataLoader(dataset, batch_size=4, num_workers=0)
        sums: dict[str, float] = {}
        n = 0
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            pred = self._forward(model, x).float()
            loss, parts = self.loss_fn(pred, self.norm.norm(y))
            out = self.norm.denorm(pred)
            b = x.shape[0]
            vals = {
                "valid_loss": float(loss),
                **{k: float(v) for k, v in parts.items()},
            }
            vals["psnr"] = float(psnr_y_batch(out, y).sum()) / b
            vals["psnr_resize"] = float(psnr_y_batch(x, y).sum()) / b
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v * b
            n += b
            if limit is not None and n >= limit:
                break
        model.train(was_training)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def _end_epoch(self, stage: Stage) -> dict[str, Any]:
        row: dict[str, Any] = {}
        if self.is_main:
            metrics = self.validate()
            if self.ema is not None:
                metrics["ema_psnr"] = self.validate(model=self.ema.module)["psnr"]
            st = self.state
            row = {
                "stage": stage.name,
                "epoch": st.epoch + 1,
                "steps": st.steps,
                "samples": st.samples,
                "train_loss": st.epoch_loss_sum / max(st.epoch_loss_count, 1),
                **metrics,
                "hours": st.seconds / 3600,
                "cpu_hours": st.cpu_seconds / 3600,
                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        if self.world > 1:
            dist.barrier()
        return row

    def _log_row(self, row: dict[str, Any]) -> None:
        text = "  ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in row.items()
        )
        print(text, flush=True)
        write_history(self.state.history, self.out / HISTORY)

    def _export_stage_weights(self, stage: Stage) -> None:
        from sr_core.training.export import export_run

        export_run(self.out, self.out / f"stage-{stage.name}.safetensors", trainer=self)
        if self.ema is not None:
            export_run(
                self.out,
                self.out / f"stage-{stage.name}-ema.safetensors",
                trainer=self,
                ema=True,
            )


def write_history(rows: list[dict[str, Any]], path: Path) -> None:
    """Write all epoch rows as CSV, atomically.

    Rewritten whole from the checkpointed history rather than appended, so a
    crash between the CSV and the checkpoint cannot leave a duplicate row, and
    a column added later (e.g. a new loss part) still gets a header.
    """
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a CSV needn't be
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
