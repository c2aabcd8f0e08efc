"""Batch planning for the CLI: command-line inputs and OUT → a list of jobs.

No image is opened and nothing is written here; only paths are inspected.
Output folders are created when the first file is saved into them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sr_core.imageops import SAVE_FORMATS

#: Extensions picked up when an input is a folder.
INPUT_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
)
_SAVE_EXTENSIONS = frozenset(SAVE_FORMATS)
#: ``--format`` choices → output extension.
FORMAT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}


class UsageError(Exception):
    """Bad command line or setup; reported without a traceback, exit code 2."""


@dataclass(frozen=True)
class Job:
    """One input and where its output goes.

    Attributes:
        source: input image.
        out_file: exact output path, or None to name it in ``out_dir``.
        out_dir: folder for the output when ``out_file`` is None.
        ext: output extension (with dot) when ``out_file`` is None.
    """

    source: Path
    out_file: Path | None
    out_dir: Path
    ext: str


def plan_jobs(inputs: Sequence[str], output: str | None, fmt: str | None) -> list[Job]:
    """Turn the command line's inputs and OUT into jobs.

    Raises:
        UsageError: no inputs or OUT, OUT unusable, or no images found.
    """
    if not inputs:
        raise UsageError("give at least one input image or folder")
    if not output:
        raise UsageError("give the output file or folder with -o OUT")
    out = Path(output)
    ins = [Path(i) for i in inputs]
    batch = len(ins) > 1 or any(i.is_dir() for i in ins)
    as_folder = batch or out.is_dir() or output.endswith(("/", os.sep))
    if not as_folder:
        ext = out.suffix.lower()
        if ext not in _SAVE_EXTENSIONS:
            raise UsageError(
                f"cannot tell the format of {out}: use an extension among "
                f"{', '.join(sorted(_SAVE_EXTENSIONS))}, or give a folder"
            )
        if fmt is not None and FORMAT_EXTENSIONS[fmt] != _canonical_ext(ext):
            raise UsageError(f"--format {fmt} does not match the output name {out}")
        return [Job(ins[0], out, out.parent, ext)]
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; with several inputs OUT must be a folder")
    jobs = _folder_jobs(ins, out, fmt)
    if not jobs:
        raise UsageError(f"no images found in {', '.join(inputs)}")
    return jobs


def _folder_jobs(ins: Sequence[Path], out: Path, fmt: str | None) -> list[Job]:
    out_abs = out.resolve()
    seen: set[Path] = set()
    jobs: list[Job] = []

    def add(src: Path, out_dir: Path) -> None:
        key = src.resolve()
        if key not in seen:
            seen.add(key)
            ext = FORMAT_EXTENSIONS[fmt] if fmt else _output_ext(src)
            jobs.append(Job(src, None, out_dir, ext))

    for item in ins:
        if not item.is_dir():
            add(item, out)  # missing files fail later, with the others listed
            continue
        for src in sorted(item.rglob("*")):
            rel = src.relative_to(item)
            if (
                src.suffix.lower() in INPUT_EXTENSIONS
                and not any(part.startswith(".") for part in rel.parts)
                and not _inside_output(src, item, out_abs)
                and src.is_file()
            ):
                add(src, out / rel.parent)
    return jobs


def _inside_output(src: Path, folder: Path, out_abs: Path) -> bool:
    """True for files in an output folder nested inside the input ``folder``,
    so a second run does not upscale the first run's results."""
    return out_abs != folder.resolve() and out_abs in src.resolve().parents


def _canonical_ext(ext: str) -> str:
    return {".jpeg": ".jpg", ".tiff": ".tif"}.get(ext, ext)


def _output_ext(src: Path) -> str:
    ext = src.suffix.lower()
    return ext if ext in _SAVE_EXTENSIONS else ".png"
