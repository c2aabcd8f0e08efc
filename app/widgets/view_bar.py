"""Toolbar above the image: view mode, zoom and Download."""

from __future__ import annotations

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QButtonGroup, QHBoxLayout, QPushButton, QWidget

MODE_LABELS = (
    ("input", "Input"),
    ("prediction", "Prediction"),
    ("side", "Side by side"),
    ("split", "Split"),
)


class ViewBarWidget(QWidget):
    """Mode buttons (exclusive), Fit / 1:1 and Download."""

    mode_changed = pyqtSignal(str)
    fit_clicked = pyqtSignal()
    actual_clicked = pyqtSignal()
    download_clicked = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.mode_buttons: dict[str, QPushButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for mode, label in MODE_LABELS:
            button = QPushButton(label, self)
            button.setCheckable(True)
            button.setObjectName(f"{mode}Button")
            button.clicked.connect(lambda _=False, m=mode: self.mode_changed.emit(m))
            self.group.addButton(button)
            self.mode_buttons[mode] = button
            layout.addWidget(button)
        layout.addStretch(1)
        self.fit_button = QPushButton("Fit", self)
        self.fit_button.setToolTip("Zoom to fit the window")
        self.actual_button = QPushButton("1:1", self)
        self.actual_button.setToolTip("One image pixel per screen pixel; drag to pan")
        self.download_button = QPushButton("Download", self)
        self.download_button.setObjectName("downloadButton")
        self.download_button.setToolTip("Save the upscaled image (Ctrl+S)")
        self.fit_button.clicked.connect(self.fit_clicked)
        self.actual_button.clicked.connect(self.actual_clicked)
        self.download_button.clicked.connect(self.download_clicked)
        for button in (self.fit_button, self.actual_button, self.download_button):
            layout.addWidget(button)
        self.set_state(has_input=False, has_result=False, mode="input")

    def set_state(self, has_input: bool, has_result: bool, mode: str) -> None:
        self.mode_buttons["input"].setEnabled(has_input)
        for name in ("prediction", "side", "split"):
            self.mode_buttons[name].setEnabled(has_result)
        self.mode_buttons[mode].setChecked(True)
        self.fit_button.setEnabled(has_input)
        self.actual_button.setEnabled(has_input)
        self.download_button.setEnabled(has_result)
