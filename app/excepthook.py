"""Last-resort handler for unexpected errors (bugs, not SRCoreErrors).

Installed as ``sys.excepthook`` and ``threading.excepthook``: it logs the
traceback to the user's log file and tells the user where it is.  Without it,
PyQt5 aborts the process when a slot raises.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path

from PyQt5.QtCore import QObject, QThread, pyqtSignal
from PyQt5.QtWidgets import QApplication, QMessageBox

log = logging.getLogger("app.excepthook")


class _Notifier(QObject):
    """Carries the dialog request to the GUI thread (queued when off-thread)."""

    raised = pyqtSignal(str, str)  # summary, log file


class ExceptionHandler:
    """Logs uncaught exceptions and shows one dialog per error."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.notifier = _Notifier()
        self.notifier.raised.connect(self._show_dialog)
        self._previous = (sys.excepthook, threading.excepthook)

    def install(self) -> None:
        sys.excepthook = self.handle
        threading.excepthook = self._handle_thread

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def handle(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous[0](exc_type, exc, tb)
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("Unexpected error:\n%s", text)
        summary = f"{exc_type.__name__}: {exc}"
        self.notifier.raised.emit(summary, str(self.log_file))

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def _show_dialog(self, summary: str, log_file: str) -> None:
        app = QApplication.instance()
        if app is None or QThread.currentThread() is not app.thread():
            return
        QMessageBox.critical(
            None,
            "Unexpected error",
            "Upscaler hit an unexpected error and may not work correctly.\n\n"
            f"{summary}\n\nThe details were written to:\n{log_file}\n\n"
            "Please attach that file when you report the problem.",
        )


def install(log_file: Path) -> ExceptionHandler:
    """Create the handler (call with a QApplication running) and install it."""
    handler = ExceptionHandler(log_file)
    handler.install()
    return handler
