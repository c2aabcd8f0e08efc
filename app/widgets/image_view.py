"""A zoomable, pannable image view that can overlay a second image.

Both layers live in the same scene coordinates (the result's pixel grid): the
input is stretched to the result size, so "the same region" means the same
scene rectangle in every view, and a split line compares them in place.
"""

from __future__ import annotations

from PyQt5.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QColor, QPainter, QPen, QPixmap, QTransform
from PyQt5.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

MIN_SCALE, MAX_SCALE = 0.02, 32.0


class ImageViewWidget(QGraphicsView):
    """Shows a base image, optionally an overlay clipped right of a split line."""

    view_changed = pyqtSignal()  # zoom or scroll position changed

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._base = QGraphicsPixmapItem()
        self._base.setTransformationMode(Qt.SmoothTransformation)
        self._clip = QGraphicsRectItem()
        self._clip.setPen(QPen(Qt.NoPen))
        self._clip.setFlag(QGraphicsItem.ItemClipsChildrenToShape, True)
        self._over = QGraphicsPixmapItem(self._clip)
        self._over.setTransformationMode(Qt.SmoothTransformation)
        self._line = QGraphicsLineItem()
        pen = QPen(QColor(255, 255, 255, 220), 2)
        pen.setCosmetic(True)
        self._line.setPen(pen)
        for item in (self._base, self._clip, self._line):
            self.scene().addItem(item)
        self._size = (0, 0)
        self._fit = True
        self._split: float | None = None
        self.setAcceptDrops(False)  # drops go to the window
        self.setFrameShape(QFrame.NoFrame)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
        self.setBackgroundBrush(QBrush(QColor("#1e1f22")))
        self.horizontalScrollBar().valueChanged.connect(self._on_scroll_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll_changed)

    # -- content ---------------------------------------------------------------
    def set_images(self, base: QPixmap | None, over: QPixmap | None) -> None:
        """Show ``base`` (stretched to ``over``'s size when both are given)."""
        ref = over if over is not None else base
        if ref is None:
            self._size = (0, 0)
            self._base.setPixmap(QPixmap())
            self._over.setPixmap(QPixmap())
            return
        w, h = ref.width(), ref.height()
        self._size = (w, h)
        for item, pix in ((self._base, base), (self._over, over)):
            item.setPixmap(pix if pix is not None else QPixmap())
            if pix is not None and pix.width() and pix.height():
                item.setTransform(
                    QTransform.fromScale(w / pix.width(), h / pix.height())
                )
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        self._update_clip()
        if self._fit:
            self.fit()

    def set_layers(self, base: bool, over: bool, split: float | None = None) -> None:
        """Which layers show; ``split`` in [0, 1] shows the overlay right of it."""
        self._base.setVisible(base)
        self._clip.setVisible(over)
        self._split = split
        self._update_clip()

    def set_split(self, split: float) -> None:
        self._split = min(1.0, max(0.0, split))
        self._update_clip()

    def _update_clip(self) -> None:
        w, h = self._size
        x = 0.0 if self._split is None else self._split * w
        self._clip.setRect(QRectF(x, 0, w - x, h))
        self._line.setLine(x, 0, x, h)
        self._line.setVisible(self._split is not None and self._clip.isVisible())

    # -- zoom and pan ------------------------------------------------------------
    @property
    def is_fit(self) -> bool:
        return self._fit

    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self._fit = True
        if self._size[0]:
            self.fitInView(self.sceneRect(), Qt.KeepAspectRatio)
        self.view_changed.emit()

    def actual_size(self) -> None:
        """1:1 — one image pixel per physical screen pixel (HiDPI aware)."""
        self._fit = False
        s = 1.0 / self.devicePixelRatioF()
        self.setTransform(QTransform.fromScale(s, s))
        self.view_changed.emit()

    def zoom_by(self, factor: float) -> None:
        scale = min(MAX_SCALE, max(MIN_SCALE, self.zoom() * factor))
        self._fit = False
        self.setTransform(QTransform.fromScale(scale, scale))
        self.view_changed.emit()

    def view_state(self) -> tuple[float, QPointF, bool]:
        center = self.mapToScene(self.viewport().rect().center())
        return self.zoom(), center, self._fit

    def apply_state(self, state: tuple[float, QPointF, bool]) -> None:
        """Copy another view's zoom and centre (without echoing view_changed)."""
        scale, center, fit = state
        self.blockSignals(True)
        try:
            if fit:
                self._fit = True
                if self._size[0]:
                    self.fitInView(self.sceneRect(), Qt.KeepAspectRatio)
            else:
                self._fit = False
                self.setTransform(QTransform.fromScale(scale, scale))
                self.centerOn(center)
        finally:
            self.blockSignals(False)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25**steps)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit and self._size[0]:
            self.fitInView(self.sceneRect(), Qt.KeepAspectRatio)

    def _on_scroll_changed(self, _value: int) -> None:
        self.view_changed.emit()
