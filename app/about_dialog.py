"""Help ▸ About: version and the loaded model's card."""

from __future__ import annotations

import html

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QIcon
from PyQt5.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout

from app import APP_NAME


def model_card_html(card: dict[str, object] | None) -> str:
    """The model card as a small HTML table (or how to get a model)."""
    if card is None:
        return (
            "<p><b>No model loaded.</b> Use File ▸ Load weights… to pick a "
            "<code>.safetensors</code> weights file.</p>"
        )
    rows = [
        ("Model", card.get("name")),
        ("Created", card.get("created") or "unknown"),
        ("Device", f"{card.get('device')} ({card.get('precision')})"),
        ("File", card.get("path")),
    ]
    training = card.get("training") or {}
    rows += [(f"Training · {k}", v) for k, v in dict(training).items()]
    if not training:
        rows.append(("Training", "no summary in the weights file"))
    cells = "".join(
        f"<tr><td style='padding-right:12px'><b>{html.escape(str(k))}</b></td>"
        f"<td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


class AboutDialog(QDialog):
    """Shows the version and ``model_card_html``."""

    def __init__(self, version: str, card: dict[str, object] | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        if parent is not None:
            self.setWindowIcon(parent.windowIcon() or QIcon())
        head = QLabel(
            f"<h2>{APP_NAME} {html.escape(version)}</h2>"
            "<p>Neural-network image upscaler (ResNet U-Net). MIT licence.</p>",
            self,
        )
        self.card = QLabel(model_card_html(card), self)
        self.card.setObjectName("modelCard")
        self.card.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.card.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.card)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)
