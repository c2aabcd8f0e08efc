"""Shared fixtures: seeded RNGs and a tiny weights file (resnet18, random init)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_rngs() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def make_tiny_weights(path: Path, calibrate: bool = True) -> Path:
    """Write a resnet18 U-Net weights file; BN statistics calibrated on noise so
    activations stay in a trained-like range."""
    from sr_core.arch import UNetConfig, build_unet
    from sr_core.weights import WeightsInfo, save_weights

    torch.manual_seed(1234)
    cfg = UNetConfig(encoder="resnet18")
    net = build_unet(cfg)
    if calibrate:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()
        with torch.no_grad():
            for _ in range(2):
                net(torch.rand(2, 3, 64, 64))
    info = WeightsInfo(arch=cfg, name="tiny-test", created="2026-01-01")
    return save_weights(path, net, info)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")
