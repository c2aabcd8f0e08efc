"""The training loop: stages of one-cycle fits, checkpoints, resume, DDP.

Run under ``torchrun --nproc_per_node=N`` it trains data-parallel (gloo on CPU,
nccl on CUDA); only rank 0 validates and writes files.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from sr_core.arch import SuperResUNet, UNetConfig, build_unet
from sr_core.training.config import Recipe, Stage
from sr_core.training.data import EpochSampler, PairDataset, scan_images, split_folder
from sr_core.training.losses import build_loss
from sr_core.training.schedule import one_cycle
from sr_core.weights import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

CHECKPOINT = "last.ckpt"
HISTORY = "history.csv"
VALID_CROP = 192


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not the recipe."""

    train_dir: str
    out_dir: str
    valid_dir: str | None = None
    encoder: str = "resnet34"
    seed: int = 0
    workers: int = 1
    device: str = "auto"
    precision: str = "auto"
    checkpoint_minutes: float = 10.0
    max_steps: int | None = None
    valid_limit: int | None = None
    progress: bool = True


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


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 on CPUs with bf16 kernels and capable GPUs, fp16 on other GPUs."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cpu":
        return (
            torch.bfloat16
            if torch.backends.mkldnn.is_available()
            and (torch.ops.mkldnn._is_mkldnn_bf16_supported())
            else None
        )
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


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
    """Optimiser groups per layer group; freezing keeps BatchNorm trainable."""
    groups = []
    for gi, (modules, lr) in enumerate(zip(model.layer_groups(), lrs, strict=True)):
        params = []
        for mod in modules:
            for sub in mod.modules():
                direct = list(sub.parameters(recurse=False))
                trainable = not (frozen and gi < 2) or isinstance(sub, nn.BatchNorm2d)
                for p in direct:
                    p.requires_grad_(trainable)
                    if trainable:
                        params.append(p)
        if params:
            groups.append(
                {"params": params, "lr": lr, "max_lr": lr, "weight_decay": wd}
            )
    return groups


def _atomic_torch_save(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint safely (tensors and plain Python values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


class Trainer:
    """Runs a recipe's stages; ``run()`` returns when done, stopped or at max_steps."""

    def __init__(self, recipe: Recipe, settings: RunSettings, resume: bool = False):
        self.recipe, self.settings = recipe, settings
        self.out = Path(settings.out_dir)
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.device = pick_device(settings.device)
        if self.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                dist.init_process_group(backend)
        self.amp_dtype = autocast_dtype(self.device, settings.precision)
        self.is_main = self.rank == 0
        torch.manual_seed(settings.seed)
        self.arch = UNetConfig(encoder=settings.encoder)
        ckpt_path = self.out / CHECKPOINT
        self.ckpt: dict[str, Any] | None = None
        if ckpt_path.exists():
            if not resume:
                raise FileExistsError(
                    f"{ckpt_path} exists: pass --resume to continue that run, or "
                    "choose another --out folder."
                )
            self.ckpt = load_checkpoint(ckpt_path)
            self.arch = UNetConfig.from_dict(json.loads(self.ckpt["arch"]))
        self.model = build_unet(self.arch, pretrained_encoder=recipe.pretrained)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.norm = Normalizer().to(self.device)
        self.loss_fn = build_loss(recipe.loss).to(self.device)
        self.state = RunState()
        if self.ckpt is not None:
            self.model.load_state_dict(self.ckpt["model"])
            self.state = RunState(**json.loads(self.ckpt["state"]))
            torch.set_rng_state(self.ckpt["torch_rng"])
        self._prepare_data()
        self._stop = False
        self.scaler = torch.amp.GradScaler(
            enabled=self.device.type == "cuda" and self.amp_dtype == torch.float16
        )

    # -- data -------------------------------------------------------------------
    def _prepare_data(self) -> None:
        folder = scan_images(self.settings.train_dir)
        if self.settings.valid_dir:
            train, valid = folder, scan_images(self.settings.valid_dir)
        else:
            train, valid = split_folder(folder, 0.1, seed=42)
        self.skipped = [*train.skipped, *valid.skipped]
        self.train_paths = train.paths
        self.valid_paths = valid.paths[: self.settings.valid_limit]
        if self.is_main:
            for p, why in self.skipped:
                print(f"skipped {p}: {why}")
            print(
                f"data: {len(self.train_paths)} train, {len(self.valid_paths)} valid "
                f"images; device {self.device}, autocast {self.amp_dtype}, "
                f"world {self.world}"
            )

    # -- helpers ------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = self.norm.norm(x).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return model(x)

    def _install_signals(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            log.warning("Signal %s: checkpointing, then stopping", signum)
            self._stop = True

        with contextlib.suppress(ValueError):  # not in the main thread
            signal.signal(signal.SIGINT, handler)
            signal.signal(signal.SIGTERM, handler)

    def checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        if not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(
            {
                "model": self.model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "state": json.dumps(dataclasses.asdict(self.state)),
                "arch": json.dumps(self.arch.to_dict()),
                "recipe": json.dumps(self.recipe.to_dict()),
                "settings": json.dumps(dataclasses.asdict(self.settings)),
                "torch_rng": torch.get_rng_state(),
            },
            self.out / CHECKPOINT,
        )

    # -- main loop ----------------------------------------------------------------
    def run(self) -> RunState:
        self._install_signals()
        ddp_model: nn.Module = self.model
        if self.world > 1:
            ddp_model = nn.parallel.DistributedDataParallel(self.model)
        while self.state.stage < len(self.recipe.stages) and not self._stop:
            done = self._run_stage(self.recipe.stages[self.state.stage], ddp_model)
            if not done:
                break
            if self.is_main:
                self._export_stage_weights(self.recipe.stages[self.state.stage])
            self.state.stage += 1
            self.state.epoch = self.state.batch = 0
            self.ckpt = None
        if self.world > 1:
            dist.barrier()
        return self.state

    def _steps_per_epoch(self, stage: Stage) -> int:
        return max(1, math.ceil(len(self.train_paths) / self.world) // stage.batch_size)

    def _run_stage(self, stage: Stage, model: nn.Module) -> bool:
        """Train one stage from the current state; False if stopped early."""
        frozen = stage.frozen and self.recipe.pretrained
        groups = layer_param_groups(
            self.model, stage.group_lrs(), frozen, self.recipe.weight_decay
        )
        optimizer = torch.optim.AdamW(groups, betas=(0.95, 0.99), eps=1e-8)
        if self.ckpt is not None and "optimizer" in self.ckpt:
            optimizer.load_state_dict(self.ckpt["optimizer"])
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
        last_ckpt = time.monotonic()
        while self.state.epoch < stage.epochs:
            dataset.set_epoch(self.state.epoch)
            sampler.set_epoch(
                self.state.epoch, start=self.state.batch * stage.batch_size
            )
            loader = DataLoader(
                dataset,
                stage.batch_size,
                sampler=sampler,
                drop_last=True,
                num_workers=self.settings.workers,
            )
            model.train()
            t_epoch, c_epoch = time.monotonic(), time.process_time()
            losses: list[float] = []
            bar = tqdm(
                total=spe,
                initial=self.state.batch,
                leave=False,
                desc=f"{stage.name} {self.state.epoch + 1}/{stage.epochs}",
                disable=not (self.is_main and self.settings.progress),
            )
            for x, y in self._batches(loader, spe - self.state.batch):
                k = self.state.epoch * spe + self.state.batch
                for g in optimizer.param_groups:
                    lr, beta1 = one_cycle(k, total, g["max_lr"], stage.pct_start)
                    g["lr"] = lr
                    g["betas"] = (beta1, 0.99)
                loss = self._train_step(model, optimizer, x, y)
                losses.append(loss)
                self.state.batch += 1
                self.state.steps += 1
                self.state.samples += stage.batch_size * self.world
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                now = time.monotonic()
                over = self.settings.max_steps is not None and (
                    self.state.steps >= self.settings.max_steps
                )
                if (
                    self._stop
                    or over
                    or (now - last_ckpt > 60 * self.settings.checkpoint_minutes)
                ):
                    self._account(t_epoch, c_epoch)
                    t_epoch, c_epoch = time.monotonic(), time.process_time()
                    self.checkpoint(optimizer)
                    last_ckpt = now
                    if self._stop or over:
                        bar.close()
                        return False
            bar.close()
            self._account(t_epoch, c_epoch)
            row = self._end_epoch(stage, losses)
            self.state.epoch += 1
            self.state.batch = 0
            if self.is_main:
                self.state.history.append(row)
                self._log_row(row)
            self.checkpoint(optimizer)
            last_ckpt = time.monotonic()
        return True

    def _batches(
        self, loader: DataLoader[Any], n: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i, (x, y) in enumerate(loader):
            if i >= n:
                break
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
    def validate(self, limit: int | None = None) -> dict[str, float]:
        """Mean loss parts and PSNR-Y (model and plain resize) on fixed crops."""
        self.model.eval()
        dataset = PairDataset(
            self.valid_paths,
            VALID_CROP,
            self.recipe.degradation,
            train=False,
            seed=self.settings.seed,
        )
        loader = DataLoader(dataset, batch_size=4, num_workers=0)
        sums: dict[str, float] = {}
        n = 0
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            pred = self._forward(self.model, x).float()
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
        self.model.train()
        return {k: v / max(n, 1) for k, v in sums.items()}

    def _end_epoch(self, stage: Stage, losses: list[float]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        if self.is_main:
            metrics = self.validate()
            row = {
                "stage": stage.name,
                "epoch": self.state.epoch + 1,
                "steps": self.state.steps,
                "samples": self.state.samples,
                "train_loss": sum(losses) / max(len(losses), 1),
                **metrics,
                "hours": self.state.seconds / 3600,
                "cpu_hours": self.state.cpu_seconds / 3600,
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
        path = self.out / HISTORY
        self.out.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _export_stage_weights(self, stage: Stage) -> None:
        from sr_core.training.export import export_run

        export_run(self.out, self.out / f"stage-{stage.name}.safetensors", trainer=self)
