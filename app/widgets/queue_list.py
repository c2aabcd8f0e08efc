"""Per-file status of queued, running and finished upscales."""

from __future__ import annotations

from PyQt5.QtCore import QSize, Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import QListView, QListWidget, QListWidgetItem

STATUS_COLORS = {
    "ready": "#9aa0a6",
    "queued": "#9aa0a6",
    "running": "#4c8dff",
    "done": "#3fb950",
    "failed": "#f85149",
    "cancelled": "#d29922",
}
STATUS_MARKS = {"done": "✓", "failed": "✗", "running": "▶", "cancelled": "–"}
_STATUS_ROLE = Qt.UserRole + 1


class QueueListWidget(QListWidget):
    """One row per job: status, then the name (long names elided in the middle,
    so the status stays visible); the tooltip holds the full name and message."""

    job_activated = pyqtSignal(int)  # job id

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("queueList")
        self.setUniformItemSizes(True)
        self.setTextElideMode(Qt.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setResizeMode(QListView.Adjust)  # re-lay rows out to the new width
        self.itemActivated.connect(self._on_item_activated)
        self.itemClicked.connect(self._on_item_activated)

    def upsert(self, job_id: int, name: str, status: str, message: str = "") -> None:
        item = self._find(job_id)
        if item is None:
            item = QListWidgetItem()
            item.setData(Qt.UserRole, job_id)
            self.addItem(item)
            # A 1 px wide hint lets rows take the view's width, so text elides.
            item.setSizeHint(QSize(1, self.sizeHintForRow(self.row(item))))
        mark = STATUS_MARKS.get(status, "•")
        item.setText(f"{mark} {status} · {name}")
        item.setData(_STATUS_ROLE, status)
        item.setForeground(QColor(STATUS_COLORS.get(status, "#c9d1d9")))
        item.setToolTip(f"{name}\n{message or status}")
        if status == "running":
            self.scrollToItem(item)

    def status_of(self, job_id: int) -> str | None:
        item = self._find(job_id)
        return None if item is None else item.data(_STATUS_ROLE)

    def keep_only(self, job_ids: set[int]) -> None:
        for row in reversed(range(self.count())):
            if self.item(row).data(Qt.UserRole) not in job_ids:
                self.takeItem(row)

    def _find(self, job_id: int) -> QListWidgetItem | None:
        for row in range(self.count()):
            item = self.item(row)
            if item.data(Qt.UserRole) == job_id:
                return item
        return None

    def _on_item_activated(self, item: QListWidgetItem) -> None:
        self.job_activated.emit(int(item.data(Qt.UserRole)))
