"""The main window: layout, menus and the wiring between widgets and controller."""

from __future__ import annotations

import time
from pathlib import Path

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QIcon, QImage, QKeySequence, QPixmap
from PyQt5.QtWidgets import (
    QAction,
    QActionGroup,
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QShortcut,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME, dialogs
from app.about_dialog import AboutDialog
from app.controller import Controller
from app.dialogs import export_result
from app.jobs import Document, Job, JobStatus, expand_paths
from app.paths import resource_path
from app.qt_image import to_qimage
from app.settings import AppSettings
from app.widgets.banner import BannerWidget
from app.widgets.compare_view import CompareWidget
from app.widgets.drop_area import (
    DropAreaWidget,
    accepts,
    image_from_mime,
    paths_from_mime,
)
from app.widgets.options_panel import OptionsPanelWidget
from app.widgets.view_bar import ViewBarWidget

DEVICE_LABELS = (
    ("auto", "Auto (GPU if available)"),
    ("cpu", "CPU"),
    ("cuda", "NVIDIA GPU (CUDA)"),
    ("mps", "Apple GPU (MPS)"),
)
NO_WEIGHTS = (
    "<b>No model weights found.</b> Upscaler needs a trained weights file "
    "(<code>.safetensors</code>). Put one in the <code>weights/</code> folder, set "
    "<code>UPSCALER_WEIGHTS</code>, or pick a file. You can still open images."
)


class MainWindow(QMainWindow):
    """Drop or open an image, pick a size, upscale, compare and export."""

    def __init__(
        self, controller: Controller, settings: AppSettings, version: str = ""
    ) -> None:
        super().__init__()
        self.controller = controller
        self.settings = settings
        self.version = version
        self._result_mode = "prediction"
        # A menu's model choice, and which half of it ("weights" or "device")
        # to save once it loads: the other half may be a command-line one.
        self._pending_model: tuple[Path | None, str, str] | None = None
        self.setWindowTitle(APP_NAME)
        icon = resource_path("icon.png")
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._elapsed_timer = QTimer(self)
        self._elapsed_timer.setInterval(200)
        self._elapsed_timer.timeout.connect(self._on_elapsed_timer_timeout)
        self._refresh()

    # -- construction ------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.options = OptionsPanelWidget(self)
        self.banner = BannerWidget(self)
        self.view_bar = ViewBarWidget(self)
        self.drop_area = DropAreaWidget(self)
        self.compare = CompareWidget(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.drop_area)
        self.stack.addWidget(self.compare)
        right = QVBoxLayout()
        right.addWidget(self.banner)
        right.addWidget(self.view_bar)
        right.addWidget(self.stack, 1)
        central = QWidget(self)
        layout = QHBoxLayout(central)
        layout.addWidget(self.options)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)
        self.model_label = QLabel("Loading model…", self)
        self.elapsed_label = QLabel("", self)
        for label in (self.model_label, self.elapsed_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        # A message (a save, what reading an image changed) gets the whole bar
        # while it shows; the model name comes back when it clears.
        self.statusBar().messageChanged.connect(
            lambda text: self.model_label.setVisible(not text)
        )
        self.resize(1100, 720)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open…", self._on_open_triggered, QKeySequence.Open)
        self._action(file_menu, "Open &folder…", self._on_open_folder_triggered)
        self._action(
            file_menu, "&Paste image", self._on_paste_triggered, QKeySequence.Paste
        )
        self.save_action = self._action(
            file_menu, "&Save result…", self._on_download_requested, QKeySequence.Save
        )
        self.copy_action = self._action(
            file_menu, "&Copy result", self._on_copy_triggered, QKeySequence.Copy
        )
        file_menu.addSeparator()
        self._action(file_menu, "Load &weights…", self._on_load_weights_triggered)
        self._action(
            file_menu, "Use the &shipped weights", self._on_shipped_weights_triggered
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.Quit)
        view_menu = bar.addMenu("&View")
        for mode, label in (
            ("input", "Input"),
            ("prediction", "Prediction"),
            ("side", "Side by side"),
            ("split", "Split"),
        ):
            self._action(view_menu, label, lambda _=False, m=mode: self._set_mode(m))
        view_menu.addSeparator()
        self._action(view_menu, "Zoom to &fit", self.compare.fit, "Ctrl+0")
        self._action(
            view_menu, "Actual size (&1:1)", self.compare.actual_size, "Ctrl+1"
        )
        settings_menu = bar.addMenu("&Settings")
        device_menu = settings_menu.addMenu("&Device")
        self.device_group = QActionGroup(self)
        for key, label in DEVICE_LABELS:
            action = device_menu.addAction(label)
            action.setCheckable(True)
            action.setData(key)
            self.device_group.addAction(action)
        self.device_group.triggered.connect(self._on_device_group_triggered)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About Upscaler", self._on_about_triggered)
        cancel = QShortcut(QKeySequence(Qt.Key_Escape), self)
        cancel.activated.connect(self.controller.cancel)

    def _connect(self) -> None:
        c, o = self.controller, self.options
        c.model_state_changed.connect(self._on_controller_model_state_changed)
        c.input_changed.connect(self._on_controller_input_changed)
        c.result_changed.connect(self._on_controller_result_changed)
        c.job_changed.connect(self._on_controller_job_changed)
        c.busy_changed.connect(self._on_controller_busy_changed)
        c.progressed.connect(self._on_controller_progressed)
        c.error.connect(self._on_controller_error)
        c.notice.connect(self._on_controller_notice)
        c.batch_finished.connect(self._on_controller_batch_finished)
        o.size_changed.connect(self._on_options_size_changed)
        o.ensemble_changed.connect(self._on_options_ensemble_changed)
        o.submit_clicked.connect(self._on_options_submit_clicked)
        o.cancel_clicked.connect(c.cancel)
        o.format_changed.connect(self._on_options_format_changed)
        o.quality_changed.connect(self._on_options_quality_changed)
        o.clear_button.clicked.connect(self._on_clear_clicked)
        o.queue.job_activated.connect(self._on_queue_job_activated)
        self.view_bar.mode_changed.connect(self._set_mode)
        self.view_bar.fit_clicked.connect(self.compare.fit)
        self.view_bar.actual_clicked.connect(self.compare.actual_size)
        self.view_bar.download_clicked.connect(self._on_download_requested)
        self.drop_area.paths_dropped.connect(self.open_paths)
        self.drop_area.image_dropped.connect(self._open_dropped_image)
        self.drop_area.clicked.connect(self._on_open_triggered)
        self.banner.action_clicked.connect(self._on_load_weights_triggered)

    def _restore_settings(self) -> None:
        s = self.settings
        self.options.set_size_key(s.size_key)
        self.options.set_ensemble(s.ensemble)
        self.controller.ensemble = self.options.ensemble
        self.options.set_export_format(s.export_format)
        self.options.quality_spin.setValue(s.quality)
        for action in self.device_group.actions():
            action.setChecked(action.data() == s.device)
        if s.geometry is not None:
            self.restoreGeometry(s.geometry)

    # -- state -----------------------------------------------------------------
    def _refresh(self) -> None:
        c = self.controller
        doc = c.document
        staged = len(c.staged_jobs())
        can_run = c.model is not None and not c.busy and (doc is not None or staged)
        self.options.submit_button.setEnabled(bool(can_run))
        self.options.submit_button.setText(
            f"Submit {staged} images" if staged > 1 else "Submit"
        )
        has_result = doc is not None and doc.result is not None
        self.view_bar.set_state(doc is not None, has_result, self.compare.mode)
        self.save_action.setEnabled(has_result)
        self.copy_action.setEnabled(has_result)
        self._update_size_label()

    def _update_size_label(self) -> None:
        c, key = self.controller, self.options.size_key
        staged = c.staged_jobs()
        if staged and not c.busy:
            self.options.size_label.setText(
                f"{len(staged)} images listed; each is scaled to this size."
            )
            return
        if c.document is None:
            self.options.size_label.setText("Open an image to see the output size.")
            return
        w, h = c.document.input_size
        out = c.output_size_for(key)
        if isinstance(out, str):
            self.options.size_label.setText(f"<span style='color:#f85149'>{out}</span>")
        else:
            self.options.size_label.setText(
                f"{w} × {h}  →  <b>{out[0]} × {out[1]}</b> px"
            )

    def _set_mode(self, mode: str) -> None:
        self.compare.set_mode(mode)
        if self.compare.mode != "input":
            self._result_mode = self.compare.mode
        self._refresh()

    def _show_document(self, doc: Document) -> None:
        input_pixmap = QPixmap.fromImage(to_qimage(doc.input_pixels))
        result = doc.result_pixels
        result_pixmap = None if result is None else QPixmap.fromImage(to_qimage(result))
        self.compare.set_images(input_pixmap, result_pixmap)
        self.stack.setCurrentWidget(self.compare)
        self.setWindowTitle(f"{doc.name} — {APP_NAME}")

    # -- input -----------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> None:
        """Open dropped/chosen files or folders (a batch when several)."""
        c = self.controller
        if not paths:
            return
        self.settings.open_dir = paths[0].parent if paths[0].is_file() else paths[0]
        batch_dir = None
        if c.busy and len(expand_paths(paths)) > 1:
            batch_dir = dialogs.ask_folder(
                self, "Save the batch results to", self.settings.batch_dir
            )
            if batch_dir is None:
                return
            self.settings.batch_dir = batch_dir
        c.open_paths(
            paths,
            self.options.size_key,
            batch_dir,
            self.options.export_format,
            self.options.quality_spin.value(),
        )
        self._refresh()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = paths_from_mime(event.mimeData())
        image = image_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)
        elif image is not None:
            event.acceptProposedAction()
            self._open_dropped_image(image)

    def _open_dropped_image(self, image: QImage) -> None:
        self.controller.paste_image(image, "dropped.png")

    def _on_open_triggered(self) -> None:
        self.open_paths(dialogs.ask_open_paths(self, self.settings.open_dir))

    def _on_open_folder_triggered(self) -> None:
        folder = dialogs.ask_folder(
            self, "Open a folder of images", self.settings.open_dir
        )
        if folder is not None:
            self.open_paths([folder])

    def _on_paste_triggered(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self.controller.paste_image(QApplication.clipboard().image())
        elif mime is not None and paths_from_mime(mime):
            self.open_paths(paths_from_mime(mime))
        else:
            dialogs.show_error(
                self,
                "Nothing to paste",
                "The clipboard holds no image. Copy an image first.",
            )
        self._refresh()

    def _on_copy_triggered(self) -> None:
        doc = self.controller.document
        if doc is None or doc.result_pixels is None:
            return
        QApplication.clipboard().setImage(to_qimage(doc.result_pixels))
        w, h = doc.result_size
        self.statusBar().showMessage(
            f"Copied the {w}×{h} result to the clipboard", 5000
        )

    # -- controller ------------------------------------------------------------
    def _on_controller_model_state_changed(self, state: str, text: str) -> None:
        self._remember_model_choice(state)
        if state != "loading":
            self.options.set_auto_side(self.controller.auto_side())
        if state == "ready":
            self.banner.hide()
            self.model_label.setText(f"Model: {text}")
        elif state == "loading":
            self.model_label.setText("Loading model…")
        else:
            self.model_label.setText("No model loaded")
            message = (
                NO_WEIGHTS
                if state == "missing"
                else f"<b>Cannot load the model.</b> {text}"
            )
            self.banner.show_message(
                message,
                "Pick weights file…",
                "warning" if state == "missing" else "error",
            )
        self._refresh()

    def _on_controller_input_changed(self, doc: Document) -> None:
        self.compare.set_mode("input")
        self._show_document(doc)
        self._refresh()

    def _on_controller_result_changed(self, doc: Document) -> None:
        self._show_document(doc)
        self.compare.set_mode(self._result_mode)
        self._refresh()

    def _on_controller_job_changed(self, job: Job) -> None:
        self.options.queue.upsert(job.id, job.name, job.status, job.message)
        self._refresh()

    def _on_controller_busy_changed(self, busy: bool) -> None:
        self.options.set_running(busy)
        if busy:
            self._elapsed_timer.start()
            self._on_elapsed_timer_timeout()
        else:
            self._elapsed_timer.stop()
            started = self.controller.job_started_at
            if started is not None:
                took = time.monotonic() - started
                self.elapsed_label.setText(f"Last run {took:.1f} s")
        self._refresh()

    def _on_controller_progressed(self, done: int, total: int) -> None:
        self.options.set_progress(done, total)
        job = self.controller.running_job
        passes = job.ensemble if job is not None else 1
        tiles = max(1, total // passes)
        if passes == 1 or done == 0:
            text = f"Tile {done // passes} of {tiles}"
        else:
            tile, step = divmod(done - 1, passes)
            text = f"Tile {tile + 1} of {tiles} · pass {step + 1} of {passes}"
        self.options.progress_label.setText(text)

    def _on_controller_error(self, title: str, text: str) -> None:
        dialogs.show_error(self, title, text)

    def _on_controller_notice(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)

    def _on_controller_batch_finished(self, saved: int, failed: int) -> None:
        if failed:
            names = [j.name for j in self.controller.jobs if j.status == "failed"]
            dialogs.show_error(
                self,
                "Some images failed",
                f"{saved} saved, {failed} skipped:\n"
                + "\n".join(names[:10])
                + "\n\nHover over an entry in the queue to see why.",
            )

    def _on_elapsed_timer_timeout(self) -> None:
        started = self.controller.job_started_at
        if started is not None:
            self.elapsed_label.setText(f"Elapsed {time.monotonic() - started:.1f} s")

    # -- options ---------------------------------------------------------------
    def _on_options_size_changed(self, key: str) -> None:
        self.settings.size_key = key
        self._update_size_label()

    def _on_options_ensemble_changed(self, passes: int) -> None:
        self.settings.ensemble = passes
        self.controller.ensemble = passes

    def _on_options_format_changed(self, fmt: str) -> None:
        self.settings.export_format = fmt

    def _on_options_quality_changed(self, quality: int) -> None:
        self.settings.quality = quality

    def _on_options_submit_clicked(self) -> None:
        c, o = self.controller, self.options
        batch_dir = None
        if c.staged_jobs():
            batch_dir = dialogs.ask_folder(
                self, "Save the batch results to", self.settings.batch_dir
            )
            if batch_dir is None:
                return
            self.settings.batch_dir = batch_dir
        c.submit(o.size_key, batch_dir, o.export_format, o.quality_spin.value())
        self._refresh()

    def _on_clear_clicked(self) -> None:
        self.controller.clear_list()
        self.options.queue.keep_only({j.id for j in self.controller.jobs})
        self._refresh()

    def _on_queue_job_activated(self, job_id: int) -> None:
        self.controller.show_job(job_id)

    # -- export, weights, about ------------------------------------------------
    def _on_download_requested(self) -> None:
        fmt, quality = self.options.export_format, self.options.quality_spin.value()
        export_result(self, self.controller, self.settings, fmt, quality)

    def _on_load_weights_triggered(self) -> None:
        start = self.controller.weights_path or self.settings.weights_path
        path = dialogs.ask_weights(self, start.parent if start else None)
        if path is not None:
            self._switch_model(path, self.controller.device, "weights")

    def _on_shipped_weights_triggered(self) -> None:
        self._switch_model(None, self.controller.device, "weights")

    def _on_device_group_triggered(self, action: QAction) -> None:
        self._switch_model(self.controller.weights_path, str(action.data()), "device")

    def _switch_model(self, path: Path | None, device: str, changed: str) -> None:
        """Load, and remember the ``changed`` half only once it has loaded."""
        self._pending_model = (path, device, changed)
        self.controller.load_model(path, device)

    def _remember_model_choice(self, state: str) -> None:
        c = self.controller
        pending = self._pending_model
        if state == "ready" and pending and pending[:2] == (c.weights_path, c.device):
            if pending[2] == "weights":
                self.settings.weights_path = c.weights_path
            else:
                self.settings.device = c.device
        if state != "loading":
            self._pending_model = None
        for action in self.device_group.actions():
            action.setChecked(action.data() == c.device)

    def _on_about_triggered(self) -> None:
        AboutDialog(self.version, self.controller.model_card(), self).exec_()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        c = self.controller
        waiting = sum(j.status == JobStatus.WAITING for j in c.jobs)
        if c.busy or waiting:
            queued = f" and {waiting} more queued" if waiting else ""
            if not dialogs.ask_yes_no(
                self,
                "Quit Upscaler?",
                f"An upscale is still running{queued}. Quit and cancel it?",
            ):
                event.ignore()
                return
        self.settings.geometry = self.saveGeometry()
        self.settings.sync()
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            # Cancelled work stops within one tile; a model load cannot be cut short.
            c.shutdown(timeout_ms=30_000)
        finally:
            QApplication.restoreOverrideCursor()
        super().closeEvent(event)
