"""App-only fixtures: isolated QSettings, tiny images, fake and real cores,
and a guard that fails any test leaving pool jobs or threads running."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from PIL import Image
from PyQt5.QtCore import QSettings, QThreadPool

from app.settings import AppSettings
from tests.app.fake_core import FakeCore


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every QSettings in a test writes under tmp_path, never the user's store."""
    QSettings.setPath(
        QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings")
    )
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UPSCALER_WEIGHTS", raising=False)
    yield AppSettings()


_POOLS: list[QThreadPool] = []


@pytest.fixture(autouse=True)
def no_leaked_workers(qapp):
    """Fail a test that leaves a worker or a thread behind (napari's idea)."""
    before = set(threading.enumerate())
    _POOLS.clear()
    yield
    leaked = [p for p in _POOLS if not p.waitForDone(3000) or p.activeThreadCount()]
    _POOLS.clear()
    assert not leaked, "a test left pool jobs running"
    assert QThreadPool.globalInstance().waitForDone(3000)
    extra = [
        t
        for t in set(threading.enumerate()) - before
        # Pool threads calling into Python show up as _DummyThread; the pool
        # check above covers them.
        if t.is_alive() and not isinstance(t, threading._DummyThread)
    ]
    assert not extra, f"a test left threads running: {extra}"


def track_pool(pool: QThreadPool) -> QThreadPool:
    _POOLS.append(pool)
    return pool


@pytest.fixture
def fake_core():
    return FakeCore()


@pytest.fixture
def image_file(tmp_path):
    """A 48×32 RGB PNG with a gradient."""
    return make_image(tmp_path / "small.png")


def make_image(path, size=(48, 32)):
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None, None]
    arr = np.concatenate(
        [
            np.broadcast_to(x, (h, w, 1)),
            np.broadcast_to(y, (h, w, 1)),
            np.full((h, w, 1), 128, np.uint8),
        ],
        axis=2,
    )
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A random-init resnet18 U-Net weights file (made once per session)."""
    from sr_core.arch import UNetConfig, build_unet
    from sr_core.weights import WeightsInfo, save_weights

    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    cfg = UNetConfig(encoder="resnet18")
    save_weights(
        path,
        build_unet(cfg),
        WeightsInfo(
            arch=cfg,
            name="tiny-test",
            created="2024-05-01",
            training={"recipe": "none (random init)", "steps": 0},
        ),
    )
    return path


@pytest.fixture
def controller(qtbot, fake_core):
    from app.controller import Controller

    ctrl = Controller(core=fake_core)
    track_pool(ctrl.pool)
    yield ctrl
    ctrl.shutdown(3000)
