"""Plain data the controller hands to the window: the open document and queue jobs.

Nothing here imports ``sr_core``: images are the core's ``ImageData`` objects,
only read through their documented attributes (``pixels``, ``source``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
FORMAT_SUFFIX = {"png": "png", "jpg": "jpg", "webp": "webp", "tiff": "tiff"}

_ids = itertools.count(1)


class JobStatus:
    """Life of a queue entry (plain strings so they print and compare easily)."""

    STAGED = "ready"  # listed, waits for Submit
    WAITING = "queued"  # will run after the current job
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class Document:
    """The image on screen: an input and, once predicted, its result."""

    image: object  # sr_core ImageData
    name: str
    source: Path | None
    result: object | None = None  # sr_core ImageData

    @property
    def stem(self) -> str:
        return Path(self.name).stem or "image"

    @property
    def input_pixels(self) -> np.ndarray:
        return self.image.pixels  # type: ignore[attr-defined]

    @property
    def result_pixels(self) -> np.ndarray | None:
        return None if self.result is None else self.result.pixels  # type: ignore[attr-defined]

    @property
    def input_size(self) -> tuple[int, int]:
        h, w = self.input_pixels.shape[:2]
        return w, h

    @property
    def result_size(self) -> tuple[int, int] | None:
        pixels = self.result_pixels
        return None if pixels is None else (pixels.shape[1], pixels.shape[0])


@dataclass(eq=False)
class Job:
    """One upscale in the queue.

    Batch jobs (``output_dir`` set) save their result and keep no pixels; single
    jobs keep input and result in memory for viewing and Download.
    """

    name: str
    path: Path | None = None
    image: object | None = None
    size_key: str = "auto"
    ensemble: int = 1  # model passes per tile (sr_core's geometric self-ensemble)
    output_dir: Path | None = None
    export_format: str = "png"
    quality: int = 95
    status: str = JobStatus.STAGED
    message: str = ""
    result: object | None = None
    saved_path: Path | None = None
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def is_batch(self) -> bool:
        return self.output_dir is not None

    @property
    def document(self) -> Document | None:
        if self.image is None:
            return None
        return Document(self.image, self.name, self.path, self.result)


@dataclass(frozen=True)
class JobOutcome:
    """What a finished job's worker returns."""

    image: object
    result: object
    saved_path: Path | None


def output_name(stem: str, size: tuple[int, int], fmt: str) -> str:
    """``<stem>_<W>x<H>.<ext>``, the default export name."""
    return f"{stem}_{size[0]}x{size[1]}.{FORMAT_SUFFIX.get(fmt, fmt)}"


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``name-2.ext``, ``name-3.ext``… (never clobbers)."""
    if not path.exists():
        return path
    for n in itertools.count(2):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise AssertionError("unreachable")


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders become their image files (sorted, not recursive)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        else:
            out.append(path)
    return out
