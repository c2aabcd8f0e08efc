"""The sidebar: size, Submit/Cancel, progress, export format and the queue."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.widgets.queue_list import QueueListWidget

SIZE_LABELS = (
    ("auto", "Auto"),
    ("1024", "1024 px (longest side)"),
    ("1280", "1280 px (longest side)"),
    ("2048", "2048 px (longest side)"),
    ("4096", "4096 px (longest side)"),
    ("x2", "×2"),
    ("x3", "×3"),
    ("x4", "×4"),
)
# Model passes per tile (the core's geometric self-ensemble).
DETAIL_LABELS = ((1, "Standard"), (8, "Best (8× slower)"))
FORMAT_LABELS = (("png", "PNG"), ("jpg", "JPEG"), ("webp", "WebP"), ("tiff", "TIFF"))
LOSSY = ("jpg", "webp")


class OptionsPanelWidget(QWidget):
    """Emits the user's choices; the window decides what they mean."""

    size_changed = pyqtSignal(str)
    ensemble_changed = pyqtSignal(int)
    submit_clicked = pyqtSignal()
    cancel_clicked = pyqtSignal()
    format_changed = pyqtSignal(str)
    quality_changed = pyqtSignal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("optionsPanel")
        self.size_combo = QComboBox(self)
        self.size_combo.setObjectName("sizeCombo")
        for key, label in SIZE_LABELS:
            self.size_combo.addItem(label, key)
        self.detail_combo = QComboBox(self)
        self.detail_combo.setObjectName("detailCombo")
        for passes, label in DETAIL_LABELS:
            self.detail_combo.addItem(label, passes)
        self.detail_combo.setToolTip(
            "Best runs the model on 8 flipped and rotated copies and averages them:\n"
            "slightly cleaner detail for 8 times the time."
        )
        self.size_label = QLabel("Open an image to see the output size.", self)
        self.size_label.setObjectName("sizeLabel")
        self.size_label.setWordWrap(True)
        self.submit_button = QPushButton("Submit", self)
        self.submit_button.setObjectName("submitButton")
        self.submit_button.setToolTip("Upscale with the chosen size")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the running upscale (Esc)")
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.progress_label = QLabel("", self)
        self.progress_label.setObjectName("progressLabel")

        self.format_combo = QComboBox(self)
        for key, label in FORMAT_LABELS:
            self.format_combo.addItem(label, key)
        self.quality_spin = QSpinBox(self)
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setValue(95)
        self.quality_spin.setSuffix(" %")

        self.queue = QueueListWidget(self)
        self.clear_button = QPushButton("Clear list", self)
        self.clear_button.setToolTip(
            "Remove finished and not yet submitted images (queued ones stay)"
        )

        size_box = QGroupBox("Output size", self)
        size_layout = QVBoxLayout(size_box)
        size_layout.addWidget(self.size_combo)
        detail_row = QHBoxLayout()
        detail_row.addWidget(QLabel("Detail", self))
        detail_row.addWidget(self.detail_combo, 1)
        size_layout.addLayout(detail_row)
        size_layout.addWidget(self.size_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.submit_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        size_layout.addLayout(buttons)
        size_layout.addWidget(self.progress)
        size_layout.addWidget(self.progress_label)

        export_box = QGroupBox("Export", self)
        export_form = QFormLayout(export_box)
        export_form.addRow("Format", self.format_combo)
        export_form.addRow("Quality", self.quality_spin)

        queue_box = QGroupBox("Queue", self)
        queue_layout = QVBoxLayout(queue_box)
        queue_layout.addWidget(self.queue, 1)
        queue_layout.addWidget(self.clear_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(size_box)
        layout.addWidget(export_box)
        layout.addWidget(queue_box, 1)
        self.setMinimumWidth(250)
        self.setMaximumWidth(320)

        self.size_combo.currentIndexChanged.connect(self._on_size_combo_changed)
        self.detail_combo.currentIndexChanged.connect(self._on_detail_combo_changed)
        self.format_combo.currentIndexChanged.connect(self._on_format_combo_changed)
        self.quality_spin.valueChanged.connect(self.quality_changed)
        self.submit_button.clicked.connect(self.submit_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.set_running(False)

    @property
    def size_key(self) -> str:
        return str(self.size_combo.currentData())

    @property
    def ensemble(self) -> int:
        return int(self.detail_combo.currentData())

    def set_ensemble(self, passes: int) -> None:
        self.detail_combo.setCurrentIndex(max(0, self.detail_combo.findData(passes)))

    @property
    def export_format(self) -> str:
        return str(self.format_combo.currentData())

    def set_size_key(self, key: str) -> None:
        index = self.size_combo.findData(key)
        self.size_combo.setCurrentIndex(max(0, index))

    def set_export_format(self, key: str) -> None:
        index = self.format_combo.findData(key)
        self.format_combo.setCurrentIndex(max(0, index))
        self.quality_spin.setEnabled(self.export_format in LOSSY)

    def set_auto_side(self, side: int) -> None:
        self.size_combo.setItemText(0, f"Auto ({side} px)")
        self.size_combo.setItemData(
            0, "Longest side chosen from this machine's free memory", Qt.ToolTipRole
        )

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        self.progress_label.setVisible(running)
        if not running:
            self.progress.reset()
            self.progress_label.clear()

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)

    def _on_size_combo_changed(self, _index: int) -> None:
        self.size_changed.emit(self.size_key)

    def _on_detail_combo_changed(self, _index: int) -> None:
        self.ensemble_changed.emit(self.ensemble)

    def _on_format_combo_changed(self, _index: int) -> None:
        self.quality_spin.setEnabled(self.export_format in LOSSY)
        self.format_changed.emit(self.export_format)
