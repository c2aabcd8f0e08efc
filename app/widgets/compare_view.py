"""Input / prediction / side-by-side / split views over two synced image views."""

from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QPixmap
from PyQt5.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from app.widgets.image_view import ImageViewWidget

MODES = ("input", "prediction", "side", "split")


class CompareWidget(QWidget):
    """The input and the upscaled result, compared in one of ``MODES``.

    ``left`` shows everything except in side-by-side mode, where it shows the
    input and ``right`` the prediction; the two share zoom and position.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.left = ImageViewWidget(self)
        self.right = ImageViewWidget(self)
        self.left.setObjectName("leftView")
        self.right.setObjectName("rightView")
        self.slider = QSlider(Qt.Horizontal, self)
        self.slider.setObjectName("splitSlider")
        self.slider.setRange(0, 1000)
        self.slider.setValue(500)
        self.slider.setToolTip("Drag to move the split: input left, prediction right")
        self._captions = (QLabel("Input"), QLabel("Prediction"))
        for caption in self._captions:
            caption.setObjectName("caption")
        self.mode = "input"
        self._input: QPixmap | None = None
        self._result: QPixmap | None = None
        self._syncing = False

        views = QHBoxLayout()
        views.setSpacing(2)
        views.addWidget(self.left)
        views.addWidget(self.right)
        split_row = QHBoxLayout()
        split_row.addWidget(self._captions[0])
        split_row.addWidget(self.slider, 1)
        split_row.addWidget(self._captions[1])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(views, 1)
        layout.addLayout(split_row)

        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.left.view_changed.connect(self._on_left_view_changed)
        self.right.view_changed.connect(self._on_right_view_changed)
        self.set_mode("input")

    @property
    def has_result(self) -> bool:
        return self._result is not None

    def set_images(self, input_pixmap: QPixmap | None, result: QPixmap | None) -> None:
        self._input, self._result = input_pixmap, result
        if result is None and self.mode != "input":
            self.mode = "input"
        self._apply()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown view mode {mode!r}")
        if mode != "input" and self._result is None:
            mode = "input"
        self.mode = mode
        self._apply()

    def _apply(self) -> None:
        side, split = self.mode == "side", self.mode == "split"
        self.right.setVisible(side)
        self.slider.setVisible(split)
        for caption in self._captions:
            caption.setVisible(split)
        if side:
            self.left.set_images(self._input, self._result)
            self.left.set_layers(base=True, over=False)
            self.right.set_images(self._input, self._result)
            self.right.set_layers(base=False, over=True)
            self.right.apply_state(self.left.view_state())
        elif split:
            self.left.set_images(self._input, self._result)
            self.left.set_layers(True, True, self.slider.value() / 1000)
        else:
            show_result = self.mode == "prediction"
            self.left.set_images(self._input, self._result)
            self.left.set_layers(base=not show_result, over=show_result)

    def fit(self) -> None:
        self.left.fit()

    def actual_size(self) -> None:
        self.left.actual_size()

    def _on_slider_value_changed(self, value: int) -> None:
        if self.mode == "split":
            self.left.set_split(value / 1000)

    def _on_left_view_changed(self) -> None:
        self._sync(self.left, self.right)

    def _on_right_view_changed(self) -> None:
        self._sync(self.right, self.left)

    def _sync(self, source: ImageViewWidget, other: ImageViewWidget) -> None:
        if self._syncing or not other.isVisible():
            return
        self._syncing = True
        try:
            other.apply_state(source.view_state())
        finally:
            self._syncing = False
