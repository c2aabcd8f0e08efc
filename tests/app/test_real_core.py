"""The worker and controller against the real ``sr_core`` with tiny random weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PyQt5.QtCore import Qt, QThreadPool

import sr_core
from app.controller import Controller
from app.workers import GeneratorWorker
from tests.app.conftest import make_image, track_pool

TIMEOUT = 120_000  # generous: the first model load competes with other work on CI
needs_imageops = pytest.mark.skipif(
    not hasattr(sr_core, "read_image"), reason="sr_core.imageops not merged yet"
)


@pytest.fixture(scope="module")
def model(tiny_weights):
    return sr_core.load_model(tiny_weights, device="cpu", precision="fp32")


@pytest.fixture
def pool():
    p = QThreadPool()
    p.setMaxThreadCount(1)
    track_pool(p)
    yield p
    p.waitForDone(5000)


def _pixels(h=32, w=48):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _options():
    # 64 px tiles on a 96×64 output: several tiles, so progress has steps.
    return sr_core.UpscaleOptions(target=sr_core.Target.scale(2), tile=64)


def test_worker_runs_a_real_prediction(qtbot, pool, model):
    worker = GeneratorWorker(lambda: sr_core.iter_upscale(_pixels(), model, _options()))
    steps, events = [], []
    worker.signals.started.connect(lambda: events.append("started"))
    worker.signals.progressed.connect(lambda d, t: steps.append((d, t)))
    worker.signals.progressed.connect(lambda d, t: events.append("progressed"))
    with qtbot.waitSignals(
        [worker.signals.started, worker.signals.progressed, worker.signals.finished],
        order="simple",
        timeout=TIMEOUT,
    ) as blocker:
        pool.start(worker)
    assert events[0] == "started" and events[-1] == "progressed"
    out = blocker.all_signals_and_args[-1].args[0]
    assert out.shape == (64, 96, 3) and out.dtype == np.uint8
    total = steps[0][1]
    assert total > 1 and steps[0] == (0, total) and steps[-1] == (total, total)
    assert [d for d, _ in steps] == list(range(total + 1))


def test_worker_cancels_mid_run(qtbot, pool, model):
    worker = GeneratorWorker(lambda: sr_core.iter_upscale(_pixels(), model, _options()))
    finished = []
    worker.signals.finished.connect(finished.append)
    # Direct connection: the abort lands in the worker thread right after the
    # first tile, before the next one starts.
    worker.signals.progressed.connect(
        lambda d, _t: worker.abort() if d == 1 else None, Qt.DirectConnection
    )
    steps = []
    worker.signals.progressed.connect(lambda d, t: steps.append(d))
    with qtbot.waitSignal(worker.signals.cancelled, timeout=TIMEOUT):
        pool.start(worker)
    pool.waitForDone(5000)
    qtbot.wait(20)
    assert not finished
    assert max(steps) == 1


def test_missing_weights_file_gives_the_missing_state(qtbot, tmp_path):
    ctrl = Controller(core=sr_core)
    track_pool(ctrl.pool)
    with qtbot.waitSignal(
        ctrl.model_state_changed,
        timeout=TIMEOUT,
        check_params_cb=lambda state, _t: state != "loading",
    ) as blocker:
        ctrl.load_model(tmp_path / "nope.safetensors", "cpu")
    assert blocker.args[0] == "missing"
    assert "nope.safetensors" in blocker.args[1]
    ctrl.shutdown()


@pytest.fixture
def real_controller(qtbot, tiny_weights):
    ctrl = Controller(core=sr_core)
    track_pool(ctrl.pool)
    ctrl.tile = 64
    with qtbot.waitSignal(
        ctrl.model_state_changed,
        timeout=TIMEOUT,
        check_params_cb=lambda state, _t: state != "loading",
    ):
        ctrl.load_model(tiny_weights, "cpu")
    assert ctrl.model_state == "ready"
    card = ctrl.model_card()
    assert card["name"] == "tiny-test"
    assert card["training"]["recipe"] == "none (random init)"
    yield ctrl
    ctrl.shutdown()


@needs_imageops
def test_real_batch_of_three_with_one_bad_file(qtbot, real_controller, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_image(src / "a.png")
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    make_image(src / "c.png")
    real_controller.open_paths([src])
    with qtbot.waitSignal(real_controller.batch_finished, timeout=TIMEOUT) as blocker:
        real_controller.submit("x2", batch_dir=out)
    assert blocker.args == [2, 1]
    assert sorted(p.name for p in out.iterdir()) == ["a_96x64.png", "c_96x64.png"]
    failed = [j for j in real_controller.jobs if j.status == "failed"]
    assert [j.name for j in failed] == ["b.png"] and failed[0].message


@needs_imageops
def test_real_export_writes_and_refuses_to_clobber(qtbot, real_controller, tmp_path):
    src = make_image(tmp_path / "photo.png")
    real_controller.open_paths([src])
    with qtbot.waitSignal(real_controller.result_changed, timeout=TIMEOUT):
        real_controller.submit("x2")
    name = real_controller.default_export_name("jpg")
    assert name == "photo_96x64.jpg"
    target = tmp_path / name
    assert real_controller.export(target, quality=80) == target
    assert target.stat().st_size > 0
    errors = []
    real_controller.error.connect(lambda title, text: errors.append(title))
    assert real_controller.export(target) is None
    assert errors == ["File already exists"]
    assert real_controller.export(src, overwrite=True) is None  # never the input
    assert real_controller.export(target, overwrite=True) == target


@needs_imageops
def test_real_conversions_are_told_to_the_user(qtbot, real_controller, tmp_path):
    frames = [
        Image.new("RGB", (24, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))
    ]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    notices = []
    real_controller.notice.connect(notices.append)
    real_controller.open_paths([gif])
    assert any(
        n.startswith("anim.gif:") and "only the first frame" in n for n in notices
    ), notices


@needs_imageops
def test_real_jpeg_export_of_a_transparent_result_says_it_is_flattened(
    qtbot, real_controller, tmp_path
):
    rgba = np.zeros((16, 24, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba[:8, :, 3] = 0  # top half clear
    src = tmp_path / "logo.png"
    Image.fromarray(rgba).save(src)
    real_controller.open_paths([src])
    with qtbot.waitSignal(real_controller.result_changed, timeout=TIMEOUT):
        real_controller.submit("x2")
    notices = []
    real_controller.notice.connect(notices.append)
    assert real_controller.export(tmp_path / "logo.jpg") is not None
    assert "clear areas are white" in notices[-1]
    assert real_controller.export(tmp_path / "logo-out.png") is not None
    assert "clear areas" not in notices[-1]
