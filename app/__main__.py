"""Start the desktop app: ``python -m app`` or the ``upscaler-gui`` entry point."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path

from PyQt5.QtCore import QCoreApplication, Qt, QTimer
from PyQt5.QtGui import QIcon, QImage, qRgb
from PyQt5.QtWidgets import QApplication

import sr_core
from app import APP_NAME, ORG_NAME, excepthook
from app.controller import Controller
from app.main_window import MainWindow
from app.paths import log_file, resource_path
from app.settings import AppSettings

STARTUP_LINE = "Upscaler startup complete"
VERSION = sr_core.__version__  # cheap: sr_core loads torch only on first use
log = logging.getLogger("app")


def setup_logging(path: Path, level: int = logging.INFO) -> None:
    """Log to a rotating file in the user's log folder and to stderr."""
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    try:
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
            )
        )
    except OSError as exc:
        print(f"Cannot write the log file {path}: {exc}", file=sys.stderr)  # noqa: T201
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="upscaler-gui", description=__doc__)
    parser.add_argument("images", nargs="*", type=Path, help="images to open")
    parser.add_argument("--weights", type=Path, help="weights file to load")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="start, load the weights, upscale a 32×32 image, exit (0 = ok)",
    )
    return parser.parse_args(argv)


def create_app(argv: list[str]) -> QApplication:
    """A QApplication with high-DPI attributes set before it exists."""
    QCoreApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
    QCoreApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
    app = QApplication.instance() or QApplication(argv)
    app.setStyle("Fusion")  # the same look on every OS; the QSS adds accents
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationVersion(VERSION)
    icon = resource_path("icon.png")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    style = resource_path("style.qss")
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    return app


def build_window(
    settings: AppSettings, args: argparse.Namespace, core=None
) -> MainWindow:
    """Window + controller; the model loads in the background."""
    controller = Controller(core=core)
    window = MainWindow(controller, settings, VERSION)
    # Command-line choices hold for this run only; the menus' choices are saved.
    # A saved choice that no longer loads (file deleted, GPU gone) falls back to
    # the shipped model; a command-line one fails visibly.
    weights = args.weights or settings.weights_path
    from_settings = args.weights is None and args.device is None
    controller.load_model(
        weights, args.device or settings.device, fallback=from_settings
    )
    if args.images:
        window.open_paths(args.images)
    return window


def _run_self_test(app: QApplication, window: MainWindow) -> None:
    """Packaging smoke test: model loads and one tiny upscale finishes."""
    controller = window.controller
    controller.error.connect(lambda title, text: log.error("%s: %s", title, text))

    def on_state(state: str, text: str) -> None:
        if state == "loading":
            return
        if state != "ready":
            log.error("Self-test: model not loaded (%s): %s", state, text)
            app.exit(1)
            return
        image = QImage(32, 32, QImage.Format_RGB32)
        for y in range(32):
            for x in range(32):
                image.setPixel(x, y, qRgb(x * 8, y * 8, 128))
        if not controller.paste_image(image) or not controller.submit("x2"):
            app.exit(1)

    def on_result(doc) -> None:
        log.info("Self-test: upscaled 32×32 to %s×%s", *doc.result_size)
        pixels = doc.result_pixels
        # The input is a gradient: a flat output means a broken model or pipeline.
        blank = pixels is None or int(pixels.max()) - int(pixels.min()) < 16
        if blank:
            log.error("Self-test: the upscaled image is blank")
        app.exit(0 if doc.result_size == (64, 64) and not blank else 1)

    def on_job(job) -> None:
        if job.status in ("failed", "cancelled"):
            log.error("Self-test: job %s: %s", job.status, job.message)
            app.exit(1)

    controller.model_state_changed.connect(on_state)
    controller.result_changed.connect(on_result)
    controller.job_changed.connect(on_job)
    if controller.model_state != "loading":
        on_state(controller.model_state, "")
    QTimer.singleShot(120_000, lambda: app.exit(2))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logfile = log_file()
    setup_logging(logfile)
    app = create_app(sys.argv[:1])
    handler = excepthook.install(logfile)
    window = build_window(AppSettings(), args)
    window.show()
    QTimer.singleShot(0, lambda: log.info(STARTUP_LINE))
    if args.self_test:
        _run_self_test(app, window)
    code = app.exec_()
    if args.self_test:
        window.close()
    handler.uninstall()
    return code


if __name__ == "__main__":
    sys.exit(main())
