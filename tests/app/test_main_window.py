"""The main window with the fake core: drops, submit, cancel, batch, export."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt5.QtCore import QMimeData, QPoint, Qt, QUrl
from PyQt5.QtGui import QDragEnterEvent, QDropEvent, QImage
from PyQt5.QtWidgets import QApplication, QFileDialog, QMessageBox

from app.controller import Controller
from app.main_window import MainWindow
from app.qt_image import to_numpy
from app.settings import AppSettings
from app.widgets.queue_list import QueueListWidget
from tests.app.conftest import make_image, track_pool

TIMEOUT = 5000


@pytest.fixture
def messages(monkeypatch):
    """Record every message box instead of blocking; question() answers No."""
    seen: list[tuple[str, str, str]] = []

    def record(kind, answer=None):
        def box(_parent, title, text, *args, **kwargs):
            seen.append((kind, title, text))
            return answer

        return box

    monkeypatch.setattr(QMessageBox, "warning", record("warning"))
    monkeypatch.setattr(QMessageBox, "critical", record("critical"))
    monkeypatch.setattr(QMessageBox, "information", record("information"))
    monkeypatch.setattr(QMessageBox, "question", record("question", QMessageBox.No))
    return seen


def _make_window(qtbot, core, wait_model=True):
    controller = Controller(core=core)
    track_pool(controller.pool)
    window = MainWindow(controller, AppSettings(), "test")
    qtbot.addWidget(window)
    if wait_model:
        with qtbot.waitSignal(
            controller.model_state_changed,
            timeout=TIMEOUT,
            check_params_cb=lambda s, _t: s != "loading",
        ):
            controller.load_model()
    return window


@pytest.fixture
def window(qtbot, fake_core, messages):
    win = _make_window(qtbot, fake_core)
    yield win
    win.close()


def drop(widget, paths):
    """Send a real dragEnter + drop carrying file URLs; returns (entered, dropped)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(10, 10)
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False, False
    event = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, event)
    return True, event.isAccepted()


def test_empty_state(window):
    assert window.stack.currentWidget() is window.drop_area
    assert "Drag an image here" in window.drop_area.text()
    assert not window.options.submit_button.isEnabled()
    assert not window.view_bar.download_button.isEnabled()
    assert "fake-nearest" in window.model_label.text()


def test_drop_an_image_shows_it_and_the_output_size(window, image_file):
    window.options.set_size_key("x2")
    assert drop(window.drop_area, [image_file]) == (True, True)
    assert window.stack.currentWidget() is window.compare
    assert window.controller.document.input_size == (48, 32)
    assert "96 × 64" in window.options.size_label.text()
    window.options.set_size_key("1280")
    assert "1280 × 853" in window.options.size_label.text()
    assert window.options.submit_button.isEnabled()


def test_drag_without_files_is_ignored(window):
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(
        QPoint(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier
    )
    QApplication.sendEvent(window.drop_area, enter)
    assert not enter.isAccepted()


def test_an_image_dragged_from_a_browser_opens(window):
    """Browsers drop a web link plus the pixels, no local file."""
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/cat.jpg")])
    pixels = QImage(30, 20, QImage.Format_RGB32)
    pixels.fill(Qt.blue)
    mime.setImageData(pixels)
    pos = QPoint(10, 10)
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window.drop_area, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window.drop_area, event)
    doc = window.controller.document
    assert doc.name == "dropped.png" and doc.input_size == (30, 20)
    assert tuple(doc.image.pixels[0, 0]) == (0, 0, 255)


def test_dropping_a_non_image_shows_a_message(window, messages, tmp_path):
    bad = tmp_path / "readme.txt"
    bad.write_text("not an image")
    drop(window.drop_area, [bad])
    assert messages and messages[-1][1] == "Cannot use this image"
    assert window.controller.document is None
    assert window.stack.currentWidget() is window.drop_area


def test_submit_runs_with_progress_then_enables_compare(qtbot, window, image_file):
    window.options.set_size_key("x2")
    drop(window.drop_area, [image_file])
    seen = []
    window.controller.progressed.connect(lambda d, t: seen.append((d, t)))
    with qtbot.waitSignal(window.controller.result_changed, timeout=TIMEOUT):
        qtbot.mouseClick(window.options.submit_button, Qt.LeftButton)
        assert not window.options.submit_button.isEnabled()  # disabled while running
    assert seen[-1] == (4, 4)
    assert window.view_bar.download_button.isEnabled()
    assert window.compare.mode == "prediction"
    for mode in ("input", "side", "split", "prediction"):
        window.view_bar.mode_buttons[mode].click()
        assert window.compare.mode == mode
    assert window.options.queue.status_of(window.controller.jobs[-1].id) == "done"


def test_best_detail_runs_eight_passes_per_tile(qtbot, window, image_file):
    combo = window.options.detail_combo
    combo.setCurrentIndex(combo.findData(8))
    window.options.set_size_key("x2")
    drop(window.drop_area, [image_file])
    seen, labels = [], []
    label = window.options.progress_label
    window.controller.progressed.connect(lambda d, t: seen.append((d, t)))
    window.controller.progressed.connect(lambda d, t: labels.append(label.text()))
    with qtbot.waitSignal(window.controller.result_changed, timeout=TIMEOUT):
        qtbot.mouseClick(window.options.submit_button, Qt.LeftButton)
    assert seen[-1] == (32, 32)  # the fake core's 4 tiles, 8 passes each
    assert labels[:2] == ["Tile 0 of 4", "Tile 1 of 4 · pass 1 of 8"]
    assert labels[-1] == "Tile 4 of 4 · pass 8 of 8"
    assert window.controller.jobs[-1].ensemble == 8


def test_queue_keeps_the_status_visible_for_long_names(qtbot):
    queue = QueueListWidget()
    qtbot.addWidget(queue)
    queue.resize(220, 120)
    queue.show()
    qtbot.waitExposed(queue)
    name = "holiday_" * 8 + "panorama.jpg"
    queue.upsert(7, name, "running")
    queue.upsert(7, name, "failed", "Cannot read the file")
    item = queue.item(0)
    assert queue.status_of(7) == "failed"
    assert item.text().startswith("✗ failed")
    assert name in item.toolTip() and "Cannot read the file" in item.toolTip()
    assert not queue.horizontalScrollBar().isVisible()
    assert queue.visualItemRect(item).width() <= queue.viewport().width()
    queue.resize(400, 120)  # rows follow the view's width
    qtbot.waitUntil(lambda: queue.visualItemRect(item).width() > 300)


def test_escape_cancels_a_running_job(qtbot, window, fake_core, image_file):
    fake_core.tiles, fake_core.delay = 100, 0.05
    drop(window.drop_area, [image_file])
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    with qtbot.waitSignal(window.controller.progressed, timeout=TIMEOUT):
        window.options.submit_button.click()
    assert window.options.cancel_button.isEnabled()
    with qtbot.waitSignal(window.controller.busy_changed, timeout=1500):
        qtbot.keyClick(window, Qt.Key_Escape)
    assert window.controller.jobs[-1].status == "cancelled"
    assert fake_core.closed == 1
    assert window.options.submit_button.isEnabled()


def test_folder_drop_runs_a_batch_and_lists_failures(
    qtbot, window, messages, monkeypatch, tmp_path
):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_image(src / "a.png")
    (src / "b.jpg").write_bytes(b"\xff\xd8 broken")
    make_image(src / "c.png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    window.options.set_size_key("x2")
    drop(window.drop_area, [src])
    assert window.options.queue.count() == 3
    assert window.options.submit_button.text() == "Submit 3 images"
    with qtbot.waitSignal(window.controller.batch_finished, timeout=TIMEOUT) as blocker:
        window.options.submit_button.click()
    assert blocker.args == [2, 1]
    assert sorted(p.name for p in out.iterdir()) == ["a_96x64.png", "c_96x64.png"]
    assert messages[-1][1] == "Some images failed" and "b.jpg" in messages[-1][2]
    assert AppSettings().batch_dir == out


def test_escape_keeps_a_listed_batch_and_clear_list_removes_it(qtbot, window, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        make_image(src / name)
    drop(window.drop_area, [src])
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key_Escape)  # nothing runs: nothing to cancel
    assert [j.status for j in window.controller.jobs] == ["ready", "ready"]
    assert window.options.submit_button.text() == "Submit 2 images"
    window.options.clear_button.click()
    assert window.controller.jobs == [] and window.options.queue.count() == 0


def _run_once(qtbot, window, image_file):
    window.options.set_size_key("x2")
    drop(window.drop_area, [image_file])
    with qtbot.waitSignal(window.controller.result_changed, timeout=TIMEOUT):
        window.options.submit_button.click()


def test_export_writes_then_asks_before_overwriting(
    qtbot, window, messages, monkeypatch, image_file, tmp_path
):
    _run_once(qtbot, window, image_file)
    asked = {}

    def save_name(_parent, _title, suggested, _filters, selected, _options):
        asked["suggested"], asked["filter"] = suggested, selected
        return str(tmp_path / "out" / "result.png"), selected

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
    window.view_bar.download_button.click()
    target = tmp_path / "out" / "result.png"
    assert Path(asked["suggested"]).name == "small_96x64.png"
    assert target.is_file() and QImage(str(target)).width() == 96
    before = target.read_bytes()

    target.write_bytes(b"someone else's file")
    window.view_bar.download_button.click()  # question() answers No
    assert messages[-1][0] == "question"
    assert target.read_bytes() == b"someone else's file"

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    window.view_bar.download_button.click()
    assert target.read_bytes() == before
    assert AppSettings().save_dir == tmp_path / "out"


def test_export_never_overwrites_the_input(
    qtbot, window, messages, monkeypatch, image_file
):
    _run_once(qtbot, window, image_file)
    original = image_file.read_bytes()
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        lambda *a, **k: (str(image_file), "PNG image (*.png)"),
    )
    window.view_bar.download_button.click()
    assert image_file.read_bytes() == original
    assert messages[-1][1] == "Choose another name"


def test_export_saves_the_result_shown_when_download_was_clicked(
    qtbot, window, fake_core, monkeypatch, tmp_path
):
    """The next queued job finishing while the save dialog is open must not
    swap which picture gets saved."""
    fake_core.tiles, fake_core.delay = 8, 0.05
    a, b = make_image(tmp_path / "a.png"), make_image(tmp_path / "b.png", (32, 32))
    window.options.set_size_key("x2")
    drop(window.drop_area, [a])
    window.options.submit_button.click()
    drop(window.drop_area, [b])  # queued behind a
    jobs = window.controller.jobs
    qtbot.waitUntil(lambda: jobs[0].status == "done", timeout=TIMEOUT)
    assert jobs[1].status == "running"
    target = tmp_path / "a_result.png"

    def save_name(*_args):
        # A modal dialog runs the event loop: b finishes behind it.
        qtbot.waitUntil(lambda: jobs[1].status == "done", timeout=TIMEOUT)
        assert window.controller.document.name == "b.png"
        return str(target), "PNG image (*.png)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
    window.view_bar.download_button.click()
    assert QImage(str(target)).size().width() == 96  # a's 96×64, not b's 64×64


def test_copy_puts_the_result_on_the_clipboard(qtbot, window, image_file):
    drop(window.drop_area, [image_file])
    assert not window.copy_action.isEnabled()  # nothing predicted yet
    _run_once(qtbot, window, image_file)
    assert window.copy_action.isEnabled()
    window.copy_action.trigger()
    copied = to_numpy(QApplication.clipboard().image())
    result = window.controller.document.result_pixels
    assert copied.shape[:2] == result.shape[:2]
    assert (copied[..., :3] == result[..., :3]).all()
    assert "Copied the" in window.statusBar().currentMessage()


def test_second_drop_while_running_is_queued(qtbot, window, fake_core, tmp_path):
    fake_core.tiles, fake_core.delay = 8, 0.02
    a, b = make_image(tmp_path / "a.png"), make_image(tmp_path / "b.png", (32, 32))
    window.options.set_size_key("x2")
    drop(window.drop_area, [a])
    window.options.submit_button.click()
    drop(window.drop_area, [b])
    assert [j.status for j in window.controller.jobs] == ["running", "queued"]
    assert window.controller.document.name == "a.png"  # not replaced mid-run
    qtbot.waitUntil(
        lambda: window.controller.jobs[-1].status == "done", timeout=TIMEOUT
    )
    assert window.controller.document.result_size == (64, 64)


def test_paste_an_image_from_the_clipboard(window):
    image = QImage(40, 20, QImage.Format_RGB32)
    image.fill(Qt.red)
    QApplication.clipboard().setImage(image)
    window._on_paste_triggered()
    assert window.controller.document.input_size == (40, 20)
    assert window.controller.default_export_name("png") is None  # no result yet


def test_missing_weights_shows_how_to_get_them(qtbot, fake_core, messages, image_file):
    fake_core.missing_weights = True
    win = _make_window(qtbot, fake_core)
    assert win.banner.isVisibleTo(win)
    assert "No model weights found" in win.banner.label.text()
    assert win.banner.button.text() == "Pick weights file…"
    drop(win.drop_area, [image_file])  # images still open
    assert win.controller.document is not None
    assert not win.options.submit_button.isEnabled()
    win.close()


def test_settings_survive_a_restart(qtbot, fake_core, messages):
    first = _make_window(qtbot, fake_core, wait_model=False)
    first.options.set_size_key("x3")
    first.options.set_export_format("jpg")
    first.options.quality_spin.setValue(80)
    first.options.detail_combo.setCurrentIndex(1)
    first.close()
    second = _make_window(qtbot, fake_core, wait_model=False)
    assert second.options.size_key == "x3"
    assert second.options.export_format == "jpg"
    assert second.options.quality_spin.value() == 80
    assert second.options.quality_spin.isEnabled()
    assert second.options.ensemble == second.controller.ensemble == 8
    second.close()


def _pick_weights(monkeypatch, path):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def test_model_choice_is_saved_only_once_it_loads(
    qtbot, window, messages, monkeypatch, tmp_path
):
    c = window.controller

    def choose(trigger):
        with qtbot.waitSignal(
            c.model_state_changed,
            timeout=TIMEOUT,
            check_params_cb=lambda s, _t: s != "loading",
        ):
            trigger()

    good, bad = tmp_path / "good.safetensors", tmp_path / "mismatched.safetensors"
    _pick_weights(monkeypatch, good)
    choose(window._on_load_weights_triggered)
    assert c.weights_path == good and AppSettings().weights_path == good

    _pick_weights(monkeypatch, bad)
    choose(window._on_load_weights_triggered)
    assert messages[-1][1] == "Cannot load the model"
    assert "another model" in messages[-1][2] and "Still using" in messages[-1][2]
    assert c.model is not None and c.model_state == "ready"
    assert c.weights_path == good and AppSettings().weights_path == good
    assert not window.banner.isVisibleTo(window)

    cpu = next(a for a in window.device_group.actions() if a.data() == "cpu")
    choose(cpu.trigger)
    assert c.model.device == "cpu" and AppSettings().device == "cpu"
    assert cpu.isChecked()

    choose(window._on_shipped_weights_triggered)
    assert c.weights_path is None and AppSettings().weights_path is None


def test_closing_during_a_run_asks_first(
    qtbot, fake_core, messages, monkeypatch, image_file
):
    fake_core.tiles, fake_core.delay = 200, 0.02
    win = _make_window(qtbot, fake_core)
    drop(win.drop_area, [image_file])
    with qtbot.waitSignal(win.controller.progressed, timeout=TIMEOUT):
        win.options.submit_button.click()
    win.show()
    assert not win.close()  # question() answers No: keeps running
    assert messages[-1][:2] == ("question", "Quit Upscaler?")
    assert win.controller.busy and win.isVisible()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    assert win.close()
    # The pool has stopped by now; the cancel is reported on the next loop turn.
    assert win.controller.pool.activeThreadCount() == 0 and fake_core.closed == 1
    qtbot.waitUntil(lambda: win.controller.jobs[-1].status == "cancelled")


def test_a_notice_gets_the_whole_status_bar_until_it_clears(qtbot, fake_core):
    win = _make_window(qtbot, fake_core)
    win.show()
    assert win.model_label.isVisible()
    note = "anim.gif: Animated image (2 frames): only the first frame is used. " * 2
    win.controller.notice.emit(note)
    assert win.statusBar().currentMessage() == note
    assert not win.model_label.isVisible()
    win.statusBar().clearMessage()  # what the 10 s timeout does
    assert win.model_label.isVisible()
