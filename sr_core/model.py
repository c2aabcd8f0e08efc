"""``SRModel``: a loaded, inference-ready network and what callers need to know."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import fusion, parametrize
from torchvision.models.resnet import BasicBlock, Bottleneck

from sr_core.allocator import keep_freed_memory
from sr_core.arch import SuperResUNet
from sr_core.weights import (
    WeightsInfo,
    build_model_from_weights,
    default_weights_path,
    read_weights,
)

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → cuda, then mps, then cpu; otherwise ``torch.device(device)``.

    Raises:
        ValueError: the device does not exist or is not available here.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "CUDA was requested but no CUDA GPU is available; use --device cpu"
        )
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"There is no {device}: this machine has {torch.cuda.device_count()} "
            "CUDA GPU(s), numbered from cuda:0"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS was requested but is not available; use --device cpu")
    return dev


def cpu_supports_bf16() -> bool:
    """True when oneDNN has fast bf16 kernels for this CPU (AVX512-BF16 / AMX)."""
    return bool(
        torch.backends.mkldnn.is_available()
        and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on capable CPUs, fp16 on CUDA, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def fold_for_inference(net: SuperResUNet) -> SuperResUNet:
    """Bake weight norm into plain conv weights and BatchNorm into the encoder
    convs that precede it.  Exact in eval mode; saves work on every call."""
    net.eval()
    for module in net.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(
                module, "weight", leave_parametrized=True
            )
    enc = net.encoder
    enc[0] = fusion.fuse_conv_bn_eval(enc[0], enc[1])
    enc[1] = nn.Identity()
    for block in net.encoder.modules():
        if isinstance(block, (BasicBlock, Bottleneck)):
            pairs = [("conv1", "bn1"), ("conv2", "bn2")]
            if isinstance(block, Bottleneck):
                pairs.append(("conv3", "bn3"))
            for conv_name, bn_name in pairs:
                fused = fusion.fuse_conv_bn_eval(
                    getattr(block, conv_name), getattr(block, bn_name)
                )
                setattr(block, conv_name, fused)
                setattr(block, bn_name, nn.Identity())
            if block.downsample is not None:
                conv, bn = block.downsample[0], block.downsample[1]
                block.downsample = nn.Sequential(fusion.fuse_conv_bn_eval(conv, bn))
    return net


class SRModel:
    """A loaded super-resolution model, ready to run tiles.

    Attributes:
        name: model name from the weights file.
        created: date the weights were made (may be empty).
        device: torch device string the model runs on.
        precision: "fp32", "bf16" or "fp16" (autocast dtype; weights stay fp32).
        info: the weights file's metadata (architecture, training summary).
        path: the weights file.
        size_multiple: tiles are padded to a multiple of this internally.
    """

    size_multiple = SuperResUNet.size_multiple

    def __init__(
        self,
        net: SuperResUNet,
        info: WeightsInfo,
        device: torch.device,
        precision: str,
        path: Path,
    ) -> None:
        self._net = net
        self.info = info
        self.name = info.name
        self.created = info.created
        self.path = path
        self._device = device
        self.device = str(device)
        self.precision = precision
        # bf16 on CPU: weights are stored in bf16 (no per-call casts, which took
        # ~15% of autocast's time); elsewhere autocast keeps fp32-sensitive ops safe.
        self._weights_dtype = next(net.parameters()).dtype
        self._mean = torch.tensor(info.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(info.std, device=device).view(1, 3, 1, 1)

    def description(self) -> str:
        """One line for a status bar: name, date, device and precision."""
        date = f" ({self.created})" if self.created else ""
        return f"{self.name}{date} · {self.device} · {self.precision}"

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        if dtype is None or dtype == self._weights_dtype:
            return contextlib.nullcontext()
        return torch.autocast(self._device.type, dtype=dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Refine images already resized to the output size.

        Args:
            x: (N, 3, H, W) float32 in [0, 1] on ``device``.  Any H, W: input is
                reflect-padded to a multiple of ``size_multiple`` and cropped back.
        Returns:
            (N, 3, H, W) float32 in [0, 1] (clamped), on ``device``.
        """
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        z = (x - self._mean) / self._std
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            z = F.pad(z, (0, pw, 0, ph), mode=mode)
        z = z.to(self._weights_dtype).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            y = self._net(z)
        y = y[..., :h, :w].float() * self._std + self._mean
        return y.clamp_(0.0, 1.0)

    def run_tile(self, tile: np.ndarray) -> np.ndarray:
        """numpy wrapper of ``__call__``: (H, W, 3) uint8 → (H, W, 3) float32 [0, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))
        x = x.to(self._device, non_blocking=True).float().div_(255.0).unsqueeze(0)
        y = self(x)
        return y[0].permute(1, 2, 0).cpu().numpy()


def load_model(
    path: str | os.PathLike[str] | None = None,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
) -> SRModel:
    """Load weights and build a ready-to-run model.

    Args:
        path: weights file; None uses the shipped/default weights.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        precision: "auto", "fp32", "bf16" or "fp16".
        threads: CPU threads for torch (None leaves torch's default).
    Raises:
        WeightsNotFoundError, CorruptWeightsError, WeightsMismatchError: bad weights.
        ValueError: unknown or unavailable device/precision.
    """
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    if dev.type == "cpu":
        keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    weights = Path(path) if path is not None else default_weights_path()
    state, info = read_weights(weights)
    net = build_model_from_weights(state, info, source=str(weights))
    net = fold_for_inference(net).to(dev, memory_format=torch.channels_last)
    if prec == "bf16" and dev.type == "cpu":
        net = net.to(torch.bfloat16)
    log.info("Loaded %s from %s on %s (%s)", info.name, weights, dev, prec)
    return SRModel(net, info, dev, prec, weights)
