"""Small modal questions and messages, wrapped so the window reads plainly.

Everything goes through QMessageBox / QFileDialog static methods, which tests
monkeypatch so nothing blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PyQt5.QtWidgets import QFileDialog, QMessageBox, QWidget

if TYPE_CHECKING:
    from app.controller import Controller
    from app.settings import AppSettings

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"
SAVE_FILTERS = {
    "png": "PNG image (*.png)",
    "jpg": "JPEG image (*.jpg *.jpeg)",
    "webp": "WebP image (*.webp)",
    "tiff": "TIFF image (*.tif *.tiff)",
}
WEIGHTS_FILTER = "Upscaler weights (*.safetensors *.pth *.pt)"


def show_error(parent: QWidget, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    """A question that defaults to No; True when the user answers Yes."""
    answer = QMessageBox.question(
        parent, title, text, QMessageBox.Yes | QMessageBox.No, QMessageBox.No
    )
    return answer == QMessageBox.Yes


def ask_overwrite(parent: QWidget, path: Path) -> bool:
    return ask_yes_no(
        parent,
        "Replace file?",
        f"{path.name} already exists in {path.parent}.\nDo you want to replace it?",
    )


def ask_open_paths(parent: QWidget, start: Path | None) -> list[Path]:
    files, _ = QFileDialog.getOpenFileNames(
        parent, "Open images", str(start or ""), f"{IMAGE_FILTER};;All files (*)"
    )
    return [Path(f) for f in files]


def ask_folder(parent: QWidget, title: str, start: Path | None) -> Path | None:
    folder = QFileDialog.getExistingDirectory(parent, title, str(start or ""))
    return Path(folder) if folder else None


def ask_weights(parent: QWidget, start: Path | None) -> Path | None:
    path, _ = QFileDialog.getOpenFileName(
        parent, "Load weights", str(start or ""), f"{WEIGHTS_FILTER};;All files (*)"
    )
    return Path(path) if path else None


def ask_save_path(
    parent: QWidget, suggested: Path, fmt: str
) -> tuple[Path, str] | None:
    """Save dialog; returns the path (extension added if missing) and format."""
    filters = ";;".join(SAVE_FILTERS.values())
    # We ask about overwriting ourselves (so the input is never clobbered and
    # the question is the same on every platform).
    path, chosen = QFileDialog.getSaveFileName(
        parent,
        "Save upscaled image",
        str(suggested),
        filters,
        SAVE_FILTERS.get(fmt, SAVE_FILTERS["png"]),
        QFileDialog.DontConfirmOverwrite,
    )
    if not path:
        return None
    out = Path(path)
    by_filter = next((k for k, v in SAVE_FILTERS.items() if v == chosen), fmt)
    suffix = out.suffix.lower().lstrip(".")
    known = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}
    known.update({"tif": "tiff", "tiff": "tiff"})
    if suffix in known:
        return out, known[suffix]
    return out.with_name(f"{out.name}.{by_filter}"), by_filter


def export_result(
    parent: QWidget,
    controller: Controller,
    settings: AppSettings,
    fmt: str,
    quality: int,
) -> Path | None:
    """Download: ask where, never touch the input, ask before replacing a file."""
    name = controller.default_export_name(fmt)
    if name is None:
        return None
    # The dialogs below run the event loop: a queued job may finish meanwhile.
    doc = controller.document
    source = doc.source
    start = settings.save_dir or (source.parent if source else Path.home())
    answer = ask_save_path(parent, start / name, fmt)
    if answer is None:
        return None
    path, fmt = answer
    conflict = controller.export_conflict(path, doc)
    if conflict == "source":
        show_error(
            parent,
            "Choose another name",
            "That is the input image; Upscaler never overwrites it.",
        )
        return None
    if conflict == "exists" and not ask_overwrite(parent, path):
        return None
    saved = controller.export(path, quality, overwrite=conflict == "exists", doc=doc)
    if saved is not None:
        settings.save_dir = path.parent
        settings.export_format = fmt
    return saved
