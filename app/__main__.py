"""Start the desktop app: ``python -m app`` or the ``upscaler-gui`` entry point."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path

from PyQt5.QtCore import QCoreApplication, Qt, QTimer
from PyQt5.QtGui import QIcon
from PyQt5.QtWidgets import QApplication

from app import APP_NAME, ORG_NAME, excepthook
from app.controller import Controller
from app.main_window import MainWindow
from app.paths import log_file, resource_path
from app.settings import AppSettings

STARTUP_LINE = "Upscaler startup complete"
VERSION = "0.1.0"
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


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="upscaler-gui", description=__doc__)
    parser.add_argument("images", nargs="*", type=Path, help="images to open")
    parser.add_argument("--weights", type=Path, help="weights file to load")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
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
    weights = args.weights or settings.weights_path
    if args.device:
        settings.device = args.device
    controller.load_model(weights, settings.device)
    if args.images:
        window.open_paths(args.images)
    return window


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    logfile = log_file()
    setup_logging(logfile)
    app = create_app(sys.argv[:1])
    handler = excepthook.install(logfile)
    window = build_window(AppSettings(), args)
    window.show()
    QTimer.singleShot(0, lambda: log.info(STARTUP_LINE))
    code = app.exec_()
    handler.uninstall()
    return code


if __name__ == "__main__":
    sys.exit(main())
