"""The empty-state drop target and the helper that reads dropped file URLs."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QMimeData, Qt, pyqtSignal
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QLabel

HINT = (
    "<p style='font-size:15pt'>Drag an image here</p>"
    "<p>…or a folder for a batch. Paste with Ctrl+V, or open with Ctrl+O.</p>"
)


def paths_from_mime(mime: QMimeData) -> list[Path]:
    """Local files and folders among the dropped URLs (others are ignored)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def image_from_mime(mime: QMimeData) -> QImage | None:
    """Pixels dropped with no local file (an image dragged out of a browser)."""
    if paths_from_mime(mime) or not mime.hasImage():
        return None
    image = QImage(mime.imageData())
    return None if image.isNull() else image


def accepts(mime: QMimeData) -> bool:
    return bool(paths_from_mime(mime)) or image_from_mime(mime) is not None


class DropAreaWidget(QLabel):
    """A dashed box that accepts dropped files and folders; click to open."""

    paths_dropped = pyqtSignal(list)  # list[Path]
    image_dropped = pyqtSignal(QImage)  # pixels without a file
    clicked = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(HINT, parent)
        self.setObjectName("dropArea")
        self.setAlignment(Qt.AlignCenter)
        self.setWordWrap(True)
        self.setAcceptDrops(True)
        self.setMinimumSize(320, 220)
        self.setCursor(Qt.PointingHandCursor)
        self.setProperty("dragging", False)

    def _set_dragging(self, on: bool) -> None:
        self.setProperty("dragging", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if accepts(event.mimeData()):
            event.acceptProposedAction()
            self._set_dragging(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_dragging(False)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_dragging(False)
        paths = paths_from_mime(event.mimeData())
        image = image_from_mime(event.mimeData())
        if not paths and image is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if paths:
            self.paths_dropped.emit(paths)
        else:
            self.image_dropped.emit(image)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.LeftButton:
            self.clicked.emit()
