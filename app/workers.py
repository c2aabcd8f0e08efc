"""Background work: QRunnables whose signals live on a separate QObject.

PyQt5's QRunnable is not a QObject and cannot hold signals, so each worker owns
a ``WorkerSignals``.  Workers never touch widgets; receivers live in the GUI
thread, so every emit is delivered there as a queued call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator

from PyQt5.QtCore import QObject, QRunnable, pyqtSignal

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """Lifecycle events of one worker (emitted from the pool thread)."""

    started = pyqtSignal()
    progressed = pyqtSignal(int, int)
    finished = pyqtSignal(object)
    failed = pyqtSignal(object)
    cancelled = pyqtSignal()


class GeneratorWorker(QRunnable):
    """Drives a generator that yields progress steps and *returns* a result.

    Each step must have ``done`` and ``total`` attributes (``sr_core.Progress``).
    The abort flag is checked after every step; on abort the generator is closed,
    which is a safe stop point for ``iter_upscale`` (at most one pass over one tile).
    """

    def __init__(
        self, make_steps: Callable[[], Generator[object, None, object]]
    ) -> None:
        super().__init__()
        # The controller owns workers; the pool must not delete them under it.
        self.setAutoDelete(False)
        self.signals = WorkerSignals()
        self._make_steps = make_steps
        self._abort = threading.Event()

    def abort(self) -> None:
        """Ask the worker to stop at its next step (thread-safe)."""
        self._abort.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def run(self) -> None:
        if self._abort.is_set():
            self.signals.cancelled.emit()
            return
        self.signals.started.emit()
        try:
            steps = self._make_steps()
            while True:
                try:
                    step = next(steps)
                except StopIteration as stop:
                    self.signals.finished.emit(stop.value)
                    return
                self.signals.progressed.emit(int(step.done), int(step.total))
                if self._abort.is_set():
                    steps.close()
                    self.signals.cancelled.emit()
                    return
        # Any error must reach the GUI thread as a signal: an exception escaping
        # run() would be lost in the pool thread.  The controller decides whether
        # it is a user-facing SRCoreError or a bug for the excepthook.
        except Exception as exc:  # noqa: BLE001
            log.debug("worker failed", exc_info=True)
            self.signals.failed.emit(exc)


class FunctionWorker(QRunnable):
    """Runs one blocking call (e.g. loading a model) and reports its result."""

    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__()
        # The controller owns workers; the pool must not delete them under it.
        self.setAutoDelete(False)
        self.signals = WorkerSignals()
        self._fn = fn

    def abort(self) -> None:
        """A single call cannot be interrupted; present for a uniform interface."""

    def run(self) -> None:
        self.signals.started.emit()
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - see GeneratorWorker.run
            log.debug("worker failed", exc_info=True)
            self.signals.failed.emit(exc)
            return
        self.signals.finished.emit(result)
