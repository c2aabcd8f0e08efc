"""Startup pieces: entry point, logging, excepthook, paths, qt_image, about box."""

from __future__ import annotations

import argparse
import logging
import os
import site
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtWidgets import QMessageBox

import sr_core
from app import excepthook, paths
from app.__main__ import build_window
from app.about_dialog import AboutDialog, model_card_html
from app.qt_image import to_numpy, to_qimage
from tests.app.conftest import track_pool

ROOT = Path(__file__).resolve().parents[2]


def _run_app(tmp_path, *args, timeout=120):
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        XDG_STATE_HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path),
        HOME=str(tmp_path),
    )
    env.pop("UPSCALER_WEIGHTS", None)
    return subprocess.run(
        [sys.executable, "-m", "app", "--self-test", "--device", "cpu", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_self_test_without_weights_starts_then_fails_cleanly(tmp_path):
    proc = _run_app(tmp_path, "--weights", str(tmp_path / "missing.safetensors"))
    assert "Upscaler startup complete" in proc.stderr
    assert "model not loaded (missing)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1
    log_files = list(tmp_path.rglob("upscaler.log"))
    assert log_files and "startup complete" in log_files[0].read_text()


@pytest.mark.skipif(not hasattr(sr_core, "read_image"), reason="needs imageops")
def test_self_test_with_tiny_weights_passes(tmp_path, tiny_weights):
    proc = _run_app(tmp_path, "--weights", str(tiny_weights))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Upscaler startup complete" in proc.stderr
    assert "upscaled 32×32 to 64×64" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_excepthook_logs_the_traceback_and_names_the_file(
    qtbot, monkeypatch, tmp_path, caplog
):
    shown = []
    monkeypatch.setattr(
        QMessageBox, "critical", lambda _p, title, text: shown.append((title, text))
    )
    log_file = tmp_path / "upscaler.log"
    handler = excepthook.install(log_file)
    try:
        assert sys.excepthook == handler.handle
        assert threading.excepthook == handler._handle_thread
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            with caplog.at_level(logging.ERROR):
                sys.excepthook(type(exc), exc, exc.__traceback__)
        qtbot.waitUntil(lambda: bool(shown), timeout=2000)
    finally:
        handler.uninstall()
    assert "Traceback" in caplog.text and "RuntimeError: boom" in caplog.text
    assert str(log_file) in shown[0][1]
    assert sys.excepthook is not handler.handle


def test_thread_exceptions_reach_the_dialog(qtbot, monkeypatch, tmp_path):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a: shown.append(a))
    handler = excepthook.install(tmp_path / "upscaler.log")
    try:
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
        qtbot.waitUntil(lambda: bool(shown), timeout=2000)
    finally:
        handler.uninstall()
    assert "ZeroDivisionError" in shown[0][2]


def test_resource_paths_from_source_and_frozen(monkeypatch, tmp_path):
    assert paths.resource_path("icon.png").is_file()
    assert paths.resource_path("style.qss").is_file()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.resource_path("icon.png") == tmp_path / "resources" / "icon.png"


def test_resources_of_a_plain_pip_install_are_found(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "bundle_root", lambda: tmp_path / "site-packages")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    shared = tmp_path / "share" / "upscaler" / "resources"
    shared.mkdir(parents=True)
    (shared / "icon.png").write_bytes(b"png")
    assert paths.resource_path("icon.png") == shared / "icon.png"


def test_resources_of_a_pip_user_install_are_found(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "bundle_root", lambda: tmp_path / "site-packages")
    monkeypatch.setattr(site, "USER_BASE", str(tmp_path / "user"))
    shared = tmp_path / "user" / "share" / "upscaler" / "resources"
    shared.mkdir(parents=True)
    (shared / "icon.png").write_bytes(b"png")
    assert paths.resource_path("icon.png") == shared / "icon.png"


def test_pyproject_installs_data_where_the_code_looks():
    """A plain ``pip install .`` must ship what ./run finds in the checkout."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from sr_core.weights import bundled_weights_dirs

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = setup["data-files"]
    for base in (Path(sys.prefix), Path(site.USER_BASE)):  # pip install, --user
        weights = [d for d in bundled_weights_dirs() if d.is_relative_to(base)]
        resources = [d for d in paths.resource_dirs() if d.is_relative_to(base)]
        assert str(weights[-1].relative_to(base)) in data
        assert str(resources[-1].relative_to(base)) in data
    for patterns in data.values():
        for pattern in patterns:
            assert list(ROOT.glob(pattern)), f"{pattern} matches no file"
    recipes = setup["package-data"]["sr_core.training"]
    assert list((ROOT / "sr_core" / "training").glob(recipes[0]))


def test_log_dir_is_under_platformdirs(tmp_path):
    assert paths.log_file().parent.is_dir()
    assert paths.log_file().name == "upscaler.log"


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (5, 7, 4), (3, 33, 3)])
def test_qimage_round_trip(qapp, shape):
    arr = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
    image = to_qimage(arr)
    assert (image.width(), image.height()) == (shape[1], shape[0])
    back = to_numpy(image)
    if arr.ndim == 2:
        assert np.array_equal(back[..., 0], arr)
    else:
        assert np.array_equal(back, arr)


def test_about_box_shows_the_model_card(qtbot):
    card = {
        "name": "tiny-test",
        "created": "2024-05-01",
        "device": "cpu",
        "precision": "fp32",
        "path": "/w/tiny.safetensors",
        "training": {"recipe": "div2k", "steps": 1000},
    }
    dialog = AboutDialog("0.1.0", card)
    qtbot.addWidget(dialog)
    text = dialog.card.text()
    for part in ("tiny-test", "2024-05-01", "cpu", "recipe", "div2k", "1000"):
        assert part in text
    assert "No model loaded" in model_card_html(None)


def test_command_line_model_options_hold_for_that_run_only(
    qtbot, isolated_settings, fake_core, tmp_path
):
    weights = tmp_path / "other.safetensors"
    args = argparse.Namespace(weights=weights, device="cpu", images=[])
    window = build_window(isolated_settings, args, core=fake_core)
    qtbot.addWidget(window)
    track_pool(window.controller.pool)
    qtbot.waitUntil(lambda: window.controller.model_state == "ready", timeout=5000)
    assert window.controller.device == "cpu"
    assert window.controller.weights_path == weights
    assert isolated_settings.device == "auto" and isolated_settings.weights_path is None
    window.close()


@pytest.mark.parametrize(
    "saved_weights,saved_device",
    [("deleted.safetensors", "cpu"), (None, "cuda")],
    ids=["weights-file-gone", "gpu-gone"],
)
def test_a_saved_model_choice_that_no_longer_loads_falls_back_to_shipped(
    qtbot, isolated_settings, fake_core, tmp_path, saved_weights, saved_device
):
    isolated_settings.weights_path = saved_weights and tmp_path / saved_weights
    isolated_settings.device = saved_device
    args = argparse.Namespace(weights=None, device=None, images=[])
    window = build_window(isolated_settings, args, core=fake_core)
    qtbot.addWidget(window)
    track_pool(window.controller.pool)
    notices = []
    window.controller.notice.connect(notices.append)
    qtbot.waitUntil(lambda: window.controller.model_state == "ready", timeout=5000)
    assert window.controller.weights_path is None
    assert window.controller.device == "auto"
    assert any("saved model choice" in n for n in notices), notices
    assert not window.banner.isVisibleTo(window)
    window.close()


def test_a_command_line_model_that_does_not_load_is_not_replaced(
    qtbot, isolated_settings, fake_core, tmp_path
):
    args = argparse.Namespace(
        weights=tmp_path / "deleted.safetensors", device=None, images=[]
    )
    window = build_window(isolated_settings, args, core=fake_core)
    qtbot.addWidget(window)
    track_pool(window.controller.pool)
    qtbot.waitUntil(lambda: window.controller.model_state == "missing", timeout=5000)
    assert window.controller.model is None
    window.close()


def test_changing_device_does_not_save_command_line_weights(
    qtbot, isolated_settings, fake_core, tmp_path
):
    weights = tmp_path / "other.safetensors"
    args = argparse.Namespace(weights=weights, device=None, images=[])
    window = build_window(isolated_settings, args, core=fake_core)
    qtbot.addWidget(window)
    track_pool(window.controller.pool)
    c = window.controller
    qtbot.waitUntil(lambda: c.model_state == "ready", timeout=5000)
    cpu = next(a for a in window.device_group.actions() if a.data() == "cpu")
    with qtbot.waitSignal(
        c.model_state_changed, timeout=5000, check_params_cb=lambda s, _t: s == "ready"
    ):
        cpu.trigger()
    assert c.device == "cpu" and c.weights_path == weights
    assert isolated_settings.device == "cpu"
    assert isolated_settings.weights_path is None
    window.close()
