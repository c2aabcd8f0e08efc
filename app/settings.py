"""Remembered user choices, stored with QSettings (INI file, per user).

Tests isolate the store with ``QSettings.setPath(IniFormat, UserScope, tmp)``.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QByteArray, QSettings

from app import APP_NAME, ORG_NAME

SIZE_KEYS = ("auto", "1024", "1280", "2048", "4096", "x2", "x3", "x4")
FORMATS = ("png", "jpg", "webp", "tiff")
DEVICES = ("auto", "cpu", "cuda", "mps")
ENSEMBLES = (1, 2, 4, 8)  # sr_core's allowed passes per tile


class AppSettings:
    """Typed accessors over one QSettings store; every setter writes through."""

    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store or QSettings(
            QSettings.IniFormat, QSettings.UserScope, ORG_NAME, APP_NAME
        )

    @property
    def store(self) -> QSettings:
        return self._store

    def sync(self) -> None:
        self._store.sync()

    def _str(
        self, key: str, default: str, allowed: tuple[str, ...] | None = None
    ) -> str:
        value = self._store.value(key, default)
        value = str(value) if value is not None else default
        if allowed is not None and value not in allowed:
            return default
        return value

    def _int(self, key: str, default: int) -> int:
        try:
            return int(self._store.value(key, default))
        except (TypeError, ValueError):
            return default

    def _path(self, key: str) -> Path | None:
        value = self._store.value(key, "")
        return Path(str(value)) if value else None

    def _set(self, key: str, value: object) -> None:
        self._store.setValue(key, value)

    @property
    def size_key(self) -> str:
        return self._str("upscale/size", "auto", SIZE_KEYS)

    @size_key.setter
    def size_key(self, value: str) -> None:
        self._set("upscale/size", value)

    @property
    def ensemble(self) -> int:
        value = self._int("upscale/ensemble", 1)
        return value if value in ENSEMBLES else 1

    @ensemble.setter
    def ensemble(self, value: int) -> None:
        self._set("upscale/ensemble", int(value))

    @property
    def device(self) -> str:
        return self._str("upscale/device", "auto", DEVICES)

    @device.setter
    def device(self, value: str) -> None:
        self._set("upscale/device", value)

    @property
    def weights_path(self) -> Path | None:
        return self._path("model/weights")

    @weights_path.setter
    def weights_path(self, value: Path | None) -> None:
        self._set("model/weights", str(value) if value else "")

    @property
    def open_dir(self) -> Path | None:
        return self._path("folders/open")

    @open_dir.setter
    def open_dir(self, value: Path) -> None:
        self._set("folders/open", str(value))

    @property
    def save_dir(self) -> Path | None:
        return self._path("folders/save")

    @save_dir.setter
    def save_dir(self, value: Path) -> None:
        self._set("folders/save", str(value))

    @property
    def batch_dir(self) -> Path | None:
        return self._path("folders/batch_output")

    @batch_dir.setter
    def batch_dir(self, value: Path) -> None:
        self._set("folders/batch_output", str(value))

    @property
    def export_format(self) -> str:
        return self._str("export/format", "png", FORMATS)

    @export_format.setter
    def export_format(self, value: str) -> None:
        self._set("export/format", value)

    @property
    def quality(self) -> int:
        return min(100, max(1, self._int("export/quality", 95)))

    @quality.setter
    def quality(self, value: int) -> None:
        self._set("export/quality", int(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)
