"""The app's only link to ``sr_core``: model, thread pool and job queue.

The controller owns the ``SRModel``, a private single-thread ``QThreadPool``
(GPU work runs one job at a time) and the queue.  It turns ``SRCoreError``s into
user-facing messages; anything else goes to ``sys.excepthook``.  Tests inject a
fake core object with the same names as ``sr_core``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from PyQt5.QtCore import QObject, QThreadPool, QTimer, pyqtSignal
from PyQt5.QtGui import QImage, QImageReader

from app.jobs import (
    Document,
    Job,
    JobOutcome,
    JobStatus,
    expand_paths,
    output_name,
    unique_path,
)
from app.messages import describe_error
from app.workers import FunctionWorker, GeneratorWorker

log = logging.getLogger(__name__)

RELEASE_MEMORY_AFTER_MS = 20_000
KEPT_RESULTS = 8  # finished single images that can be shown again
# Files this big (bytes, or pixels by their header) are decoded in the pool, so
# the window does not freeze: a 100 MP PNG takes seconds. Smaller ones open at once.
BACKGROUND_OPEN_BYTES = 16_000_000
BACKGROUND_OPEN_PIXELS = 16_000_000


class Controller(QObject):
    """Model, queue and worker lifecycle; emits what the window should show."""

    model_state_changed = pyqtSignal(str, str)  # loading|ready|missing|error, text
    input_changed = pyqtSignal(object)  # Document
    result_changed = pyqtSignal(object)  # Document with a result
    job_changed = pyqtSignal(object)  # Job (added or status changed)
    busy_changed = pyqtSignal(bool)
    progressed = pyqtSignal(int, int)
    error = pyqtSignal(str, str)  # title, message
    notice = pyqtSignal(str)
    batch_finished = pyqtSignal(int, int)  # saved, failed

    def __init__(self, core: ModuleType | object | None = None, parent=None) -> None:
        super().__init__(parent)
        self._core = core
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.model = None
        self.model_state = "loading"
        # What the loaded model came from (None = the shipped weights).
        self.weights_path: Path | None = None
        self.device = "auto"
        self.document: Document | None = None
        self.jobs: list[Job] = []
        self.tile: int | None = None  # None: the core picks from free memory
        self.ensemble = 1  # passes per tile for jobs queued from now on
        self.job_started_at: float | None = None
        self._current: tuple[Job, GeneratorWorker] | None = None
        self._workers: set = set()
        self._loading = False
        self._fallback_pending = False
        self._auto_side: int | None = None
        self._opener: FunctionWorker | None = None  # a big file being decoded
        self._loader: FunctionWorker | None = None
        self._reported: set[int] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="upscaler-")
        # Give the model's freed working memory back once the queue has been idle
        # a while: right after a job, the next one would only fault it in again.
        self._release_timer = QTimer(self)
        self._release_timer.setSingleShot(True)
        self._release_timer.setInterval(RELEASE_MEMORY_AFTER_MS)
        self._release_timer.timeout.connect(self._release_memory)

    # -- core and model -------------------------------------------------------
    @property
    def core(self):
        if self._core is None:
            self._core = importlib.import_module("sr_core")
        return self._core

    def load_model(
        self, path: Path | None = None, device: str = "auto", fallback: bool = False
    ) -> None:
        """Load weights in the pool (after any running job); None = shipped weights.

        ``fallback``: if this load fails while no model is loaded, load the
        shipped weights on the automatic device instead (for a remembered choice
        whose file or GPU has gone since)."""
        self._fallback_pending = fallback and (path, device) != (None, "auto")
        # Before the pool starts its threads: they must share the tuned heap.
        self.core.keep_freed_memory()
        self._loading = True
        self.model_state = "loading"
        self.model_state_changed.emit("loading", "Loading model…")

        def load():
            # The first call also imports torch, which takes a moment: keep it
            # off the GUI thread so the window appears at once.
            return self.core.load_model(path, device=device)

        worker = FunctionWorker(load)
        self._loader = worker
        worker.signals.finished.connect(
            lambda m: self._on_loader_finished(worker, m, path, device)
        )
        worker.signals.failed.connect(lambda e: self._on_loader_failed(worker, e))
        self._start(worker)

    def _retire(self, worker) -> None:
        """Drop a finished worker on the next loop turn, not inside its own
        signal delivery: deleting the emitting QObject there crashes PyQt."""
        QTimer.singleShot(0, lambda: self._workers.discard(worker))

    def _on_loader_finished(
        self, worker: FunctionWorker, model, path: Path | None, device: str
    ) -> None:
        self._retire(worker)
        if worker is not self._loader:
            return  # superseded by a newer load
        self._loading = False
        self.model = model
        self._auto_side = None  # measured again for the new device
        self.weights_path, self.device = path, device
        self.model_state = "ready"
        self.model_state_changed.emit("ready", model.description())
        self._dispatch()

    def _on_loader_failed(self, worker: FunctionWorker, exc: BaseException) -> None:
        self._retire(worker)
        if worker is not self._loader:
            return
        self._loading = False
        if not self._is_core_error(exc) and not isinstance(exc, ValueError):
            self._report_bug(exc)
        if self.model is not None:
            # A failed switch keeps the model that works; waiting jobs run on it.
            self.error.emit(
                "Cannot load the model",
                f"{exc}\n\nStill using {self.model.description()}.",
            )
            self.model_state = "ready"
            self.model_state_changed.emit("ready", self.model.description())
            self._dispatch()
            return
        if self._fallback_pending:
            self.notice.emit(
                f"Could not load the saved model choice ({exc}); using the shipped "
                "model instead."
            )
            self.load_model(None, "auto")
            return
        missing = type(exc).__name__ == "WeightsNotFoundError"
        self.model_state = "missing" if missing else "error"
        self.model_state_changed.emit(self.model_state, str(exc))

    def model_card(self) -> dict[str, object] | None:
        """Name, date, device and training summary of the loaded model."""
        if self.model is None:
            return None
        info = getattr(self.model, "info", None)
        return {
            "name": self.model.name,
            "created": self.model.created,
            "device": self.model.device,
            "precision": self.model.precision,
            "path": str(getattr(self.model, "path", "")),
            "training": dict(getattr(info, "training", {}) or {}),
        }

    # -- sizes ----------------------------------------------------------------
    def target_for(self, size_key: str):
        target = self.core.Target
        if size_key == "auto":
            return target.longest(self.auto_side())
        if size_key.startswith("x"):
            return target.scale(float(size_key[1:]))
        return target.longest(int(size_key))

    def output_size_for(self, size_key: str, size: tuple[int, int] | None = None):
        """(W, H) a run would produce, or the error text when it cannot run."""
        if size is None:
            if self.document is None:
                return None
            size = self.document.input_size
        try:
            return self.core.output_size(size, self.target_for(size_key), self.model)
        except self.core.errors.SRCoreError as exc:
            return str(exc)

    def auto_side(self) -> int:
        """Auto's longest side, measured once per model load: measured per job,
        the memory a running batch holds would change it mid-batch."""
        if self._auto_side is None:
            device = self.model.device if self.model is not None else "cpu"
            side = int(self.core.auto_longest_side(device))
            if self.model is None:
                return side
            self._auto_side = side
        return self._auto_side

    # -- input ----------------------------------------------------------------
    def open_paths(
        self,
        paths: list[Path],
        size_key: str = "auto",
        batch_dir: Path | None = None,
        export_format: str = "png",
        quality: int = 95,
    ) -> None:
        """One file when idle: show it.  Otherwise list the files as a batch;
        while busy, or given ``batch_dir``, they join the queue and run after
        the current job."""
        files = expand_paths(paths)
        if not files:
            self.error.emit(
                "No images found",
                "The folder holds no PNG, JPEG, WebP, TIFF, BMP or GIF files.",
            )
            return
        if len(files) == 1 and not self.busy and not self.staged_jobs():
            self._open_single(files[0])
            return
        # A chosen folder means "run these": the job that made the window ask
        # may have finished while the folder dialog was open.
        queue = self.busy or batch_dir is not None
        status = JobStatus.WAITING if queue else JobStatus.STAGED
        single = len(files) == 1 and batch_dir is None
        for path in files:
            job = Job(
                path.name,
                path=path,
                size_key=size_key,
                ensemble=self.ensemble,
                status=status,
                output_dir=batch_dir,
                export_format=export_format,
                quality=quality,
            )
            if single and not _is_big(path):  # a big one is read in its job
                job.image = self._read(path)
                if job.image is None:
                    return
            self.jobs.append(job)
            self.job_changed.emit(job)
        if self.busy:
            self.notice.emit(
                f"Queued {len(files)} image(s); they run after the current one."
            )
        self._dispatch()

    def _read(self, path: Path):
        try:
            image = self.core.read_image(path)
        except self.core.errors.SRCoreError as exc:
            self._show_error(exc)
            return None
        self._tell_notes(image, path)
        return image

    def _tell_notes(self, image, path: Path) -> None:
        if image.notes:  # e.g. only an animation's first frame, CMYK converted
            self.notice.emit(f"{path.name}: " + " ".join(image.notes))

    def _open_single(self, path: Path) -> None:
        self._opener = None  # an open still decoding is superseded
        if _is_big(path):
            self._open_in_background(path)
            return
        image = self._read(path)
        if image is not None:
            self._show_input(image, path)

    def _show_input(self, image, path: Path) -> None:
        self.document = Document(image, path.name, path)
        self.input_changed.emit(self.document)

    def _open_in_background(self, path: Path) -> None:
        worker = FunctionWorker(lambda: self.core.read_image(path))
        self._opener = worker
        worker.signals.finished.connect(
            lambda image: self._on_opened(worker, image, path)
        )
        worker.signals.failed.connect(lambda exc: self._on_open_failed(worker, exc))
        self.notice.emit(f"Opening {path.name}…")
        self._start(worker)

    def _on_opened(self, worker: FunctionWorker, image, path: Path) -> None:
        self._retire(worker)
        if worker is self._opener:
            self._opener = None
            self.notice.emit("")  # clears "Opening…"
            self._tell_notes(image, path)
            self._show_input(image, path)

    def _on_open_failed(self, worker: FunctionWorker, exc: BaseException) -> None:
        self._retire(worker)
        if worker is self._opener:
            self._opener = None
            self.notice.emit("")
            self._show_error(exc)

    @property
    def opening(self) -> bool:
        """A big file is being decoded in the background."""
        return self._opener is not None

    def paste_image(self, image: QImage, name: str = "clipboard.png") -> bool:
        """Open an image from the clipboard or a drop that carries no file
        (saved to a temp PNG so the core reads it); ``name`` names it."""
        if image.isNull():
            self.error.emit("Nothing to paste", "The clipboard holds no image.")
            return False
        stem = Path(name).stem
        path = Path(self._tmp.name) / f"{stem}-{int(time.time() * 1000)}.png"
        if not image.save(str(path), "PNG"):
            self.error.emit("Cannot open the image", "It could not be converted.")
            return False
        image_data = self._read(path)
        if image_data is None:
            return False
        job_doc = Document(image_data, name, None)
        if self.busy:
            job = Job(
                name,
                image=image_data,
                ensemble=self.ensemble,
                status=JobStatus.WAITING,
            )
            self.jobs.append(job)
            self.job_changed.emit(job)
            self.notice.emit(f"Queued {name}; it runs after the current one.")
        else:
            self._opener = None  # a big file still decoding would replace it
            self.document = job_doc
            self.input_changed.emit(job_doc)
        return True

    def show_job(self, job_id: int) -> bool:
        """Show a finished single job's input and result again."""
        job = next((j for j in self.jobs if j.id == job_id), None)
        doc = job.document if job is not None else None
        if doc is None:
            if job is not None and job.status == JobStatus.DONE and not job.is_batch:
                self.notice.emit(
                    f"Only the last {KEPT_RESULTS} results stay in memory; open "
                    f"{job.name} again to redo it."
                )
            return False
        self.document = doc
        if doc.result is not None:
            self.result_changed.emit(doc)
        else:
            self.input_changed.emit(doc)
        return True

    # -- queue ----------------------------------------------------------------
    @property
    def running_job(self) -> Job | None:
        return self._current[0] if self._current is not None else None

    @property
    def busy(self) -> bool:
        return self._current is not None

    def staged_jobs(self) -> list[Job]:
        return [j for j in self.jobs if j.status == JobStatus.STAGED]

    def submit(
        self,
        size_key: str,
        batch_dir: Path | None = None,
        export_format: str = "png",
        quality: int = 95,
    ) -> bool:
        """Run the listed batch (needs ``batch_dir``) or else the open image."""
        staged = self.staged_jobs()
        if staged:
            if batch_dir is None:
                return False
            problem = unwritable_folder(batch_dir)
            if problem:  # found now, not after the first upscale
                self.error.emit("Cannot save there", problem)
                return False
            for job in staged:
                job.size_key, job.output_dir = size_key, batch_dir
                job.ensemble = self.ensemble
                job.export_format, job.quality = export_format, quality
                job.status = JobStatus.WAITING
                self.job_changed.emit(job)
        elif self.opening:
            self.notice.emit("Still opening the image; submit once it shows.")
            return False
        elif self.document is not None:
            doc = self.document
            job = Job(
                doc.name,
                path=doc.source,
                image=doc.image,
                size_key=size_key,
                ensemble=self.ensemble,
                status=JobStatus.WAITING,
            )
            self.jobs.append(job)
            self.job_changed.emit(job)
        else:
            return False
        self._dispatch()
        return True

    def cancel(self) -> None:
        """Stop the running job (within one tile) and drop the queued ones; a
        listed batch not yet submitted stays listed."""
        for job in self.jobs:
            if job.status == JobStatus.WAITING:
                self._set_status(job, JobStatus.CANCELLED)
        if self._current is not None:
            self._current[1].abort()

    def clear_list(self) -> None:
        """Forget finished and not yet submitted jobs; queued and running stay."""
        self.jobs = [
            j for j in self.jobs if j.status in (JobStatus.WAITING, JobStatus.RUNNING)
        ]

    def _dispatch(self) -> None:
        if self._current is not None or self._loading or self.model is None:
            return
        job = next((j for j in self.jobs if j.status == JobStatus.WAITING), None)
        if job is None:
            return
        try:
            options = self.core.UpscaleOptions(
                target=self.target_for(job.size_key),
                tile=self.tile,
                ensemble=job.ensemble,
            )
        except ValueError as exc:
            self._set_status(job, JobStatus.FAILED, str(exc))
            self._dispatch()
            return
        model = self.model
        worker = GeneratorWorker(lambda: self._job_steps(job, model, options))
        worker.signals.progressed.connect(self.progressed)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.failed.connect(self._on_worker_failed)
        worker.signals.cancelled.connect(self._on_worker_cancelled)
        self._current = (job, worker)
        self.job_started_at = time.monotonic()
        self._set_status(job, JobStatus.RUNNING)
        self.busy_changed.emit(True)
        self._start(worker)

    def _job_steps(self, job: Job, model, options):
        """Runs in the pool thread: read, upscale (yielding progress), save."""
        core = self.core
        image = job.image if job.image is not None else core.read_image(job.path)
        if job.output_dir is not None:  # a format's size limit, found before the work
            in_size = (image.pixels.shape[1], image.pixels.shape[0])
            size = core.output_size(in_size, options.target, model)
            name = output_name(Path(job.name).stem, size, job.export_format)
            core.check_savable(job.output_dir / name, size)
        upscaling = core.iter_upscale(image.pixels, model, options)
        last = None
        try:
            while True:
                try:
                    last = next(upscaling)
                except StopIteration as stop:
                    pixels = stop.value
                    break
                yield last
        finally:
            upscaling.close()
        result = image.with_pixels(pixels)
        saved = None
        if job.output_dir is not None:
            # One more stop point: a cancel that came during the last tile or
            # the stitching must not still write the file.
            yield last
            size = (pixels.shape[1], pixels.shape[0])
            name = output_name(Path(job.name).stem, size, job.export_format)
            saved = core.save_image(
                result, unique_path(job.output_dir / name), quality=job.quality
            )
        return JobOutcome(image, result, saved)

    def _finish_current(self, status: str, message: str = "") -> Job:
        job, worker = self._current
        self._current = None
        self._retire(worker)
        self._set_status(job, status, message)
        self.busy_changed.emit(False)
        self._release_timer.start()
        return job

    def _on_worker_finished(self, outcome: JobOutcome) -> None:
        job, worker = self._current
        if worker.aborted and outcome.saved_path is None:
            # Cancelled after the last progress step: the user asked not to see it.
            self._on_worker_cancelled()
            return
        job.saved_path = outcome.saved_path
        if not job.is_batch:
            job.image, job.result = outcome.image, outcome.result
            self._free_old_results()
        message = str(outcome.saved_path) if outcome.saved_path else ""
        self._finish_current(JobStatus.DONE, message)
        self.document = Document(outcome.image, job.name, job.path, outcome.result)
        self.result_changed.emit(self.document)
        self._dispatch()
        self._summarise_batch()

    def _free_old_results(self) -> None:
        """Keep the pixels of the last KEPT_RESULTS results only: a 4096 px
        result and its input take ~60 MB, and a session can run hundreds."""
        kept = [j for j in self.jobs if j.result is not None]
        for job in kept[:-KEPT_RESULTS]:
            job.image = job.result = None

    def _summarise_batch(self) -> None:
        if self.busy or any(j.status == JobStatus.WAITING for j in self.jobs):
            return
        batch = [j for j in self.jobs if j.is_batch and j.id not in self._reported]
        if not batch:
            return
        self._reported.update(j.id for j in batch)
        done = [j for j in batch if j.status == JobStatus.DONE]
        failed = [j for j in batch if j.status == JobStatus.FAILED]
        text = f"Batch finished: {len(done)} saved"
        if failed:
            text += f", {len(failed)} failed (see the list)"
        self.notice.emit(text)
        self.batch_finished.emit(len(done), len(failed))

    def _on_worker_failed(self, exc: BaseException) -> None:
        job = self._finish_current(JobStatus.FAILED, str(exc))
        if not job.is_batch:
            self._show_error(exc)
        elif isinstance(exc, self.core.errors.OutputWriteError) and not isinstance(
            exc, self.core.errors.OutputTooLargeError
        ):
            # A full disk or a lost folder fails every image alike: stop here.
            for other in self.jobs:
                same_folder = other.output_dir == job.output_dir
                if other.status == JobStatus.WAITING and same_folder:
                    self._set_status(other, JobStatus.CANCELLED, "not run: " + str(exc))
            self._show_error(exc)
        elif not self._is_core_error(exc):
            self._report_bug(exc)
        # A batch lists its failures, skips them and carries on.
        self._dispatch()
        self._summarise_batch()

    def _on_worker_cancelled(self) -> None:
        self._finish_current(JobStatus.CANCELLED)
        self.notice.emit("Cancelled.")
        self._dispatch()

    def _release_memory(self) -> None:
        if not self.busy and not self._loading:
            self.core.release_free_memory()

    def _set_status(self, job: Job, status: str, message: str = "") -> None:
        job.status, job.message = status, message
        self.job_changed.emit(job)

    def _start(self, worker) -> None:
        # Keep a reference while the pool runs it (superqt's worker set).
        self._workers.add(worker)
        self.pool.start(worker)

    # -- export ---------------------------------------------------------------
    def default_export_name(self, export_format: str) -> str | None:
        doc = self.document
        if doc is None or doc.result_size is None:
            return None
        return output_name(doc.stem, doc.result_size, export_format)

    def export_conflict(self, path: Path, doc: Document | None = None) -> str | None:
        """ "source" if ``path`` is the input file, "exists" if taken, else None.

        ``doc`` defaults to the current document.
        """
        doc = doc or self.document
        if doc is not None and doc.source is not None and _same_file(path, doc.source):
            return "source"
        return "exists" if path.exists() else None

    def export(
        self,
        path: Path,
        quality: int = 95,
        overwrite: bool = False,
        doc: Document | None = None,
    ) -> Path | None:
        """Save ``doc``'s result (default: the current one) atomically; None after
        an error. Pass the document the user chose: a queued job finishing while a
        save dialog is open replaces the current one."""
        doc = doc or self.document
        if doc is None or doc.result is None:
            return None
        try:
            saved = self.core.save_image(
                doc.result, path, quality=quality, overwrite=overwrite
            )
        except self.core.errors.SRCoreError as exc:
            self._show_error(exc)
            return None
        pixels = doc.result.pixels
        flattened = (
            Path(saved).suffix.lower() in (".jpg", ".jpeg")
            and pixels.ndim == 3
            and pixels.shape[2] == 4
            and int(pixels[..., 3].min()) < 255
        )
        extra = (
            " (JPEG has no transparency: clear areas are white)" if flattened else ""
        )
        self.notice.emit(f"Saved {saved}{extra}")
        return Path(saved)

    # -- errors and shutdown --------------------------------------------------
    def _is_core_error(self, exc: BaseException) -> bool:
        return isinstance(exc, self.core.errors.SRCoreError)

    def describe_error(self, exc: BaseException) -> tuple[str, str]:
        return describe_error(exc)

    def _show_error(self, exc: BaseException) -> None:
        if not self._is_core_error(exc):
            self._report_bug(exc)
            return
        self.error.emit(*self.describe_error(exc))

    def _report_bug(self, exc: BaseException) -> None:
        sys.excepthook(type(exc), exc, exc.__traceback__)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for the pool; True when it is idle."""
        self.cancel()
        done = self.pool.waitForDone(timeout_ms)
        if done:
            self._workers.clear()
            self._tmp.cleanup()  # a job still running may be reading from it
        return done


def unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be created in ``folder``, or None when they can."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".upscaler-probe-"):
            pass
    except OSError as exc:
        return (
            f"Upscaler cannot write to {folder} ({exc.strerror or exc}). "
            "Choose another folder."
        )
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _is_big(path: Path) -> bool:
    """Worth decoding off the GUI thread: by file size, or by the pixel count in
    its header (Qt reads only the header here)."""
    try:
        if path.stat().st_size > BACKGROUND_OPEN_BYTES:
            return True
    except OSError:
        return False  # the read reports it
    size = QImageReader(str(path)).size()
    return size.isValid() and size.width() * size.height() > BACKGROUND_OPEN_PIXELS
