"""Where bundled resources and per-user files live, from source or frozen.

Bundled files (``resources/``) are reached only through ``resource_path``; the log
goes under platformdirs and settings in Qt's per-user INI file, never inside the
bundle.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

from platformdirs import user_log_dir

from app import APP_NAME


def bundle_root() -> Path:
    """The folder holding ``resources/``: PyInstaller's unpack dir when frozen,
    else the repository root (the parent of the ``app`` package)."""
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return Path(sys._MEIPASS)
    return Path(__file__).resolve().parent.parent


def resource_dirs() -> list[Path]:
    """Where resources are looked for: the bundle or checkout, then a plain
    ``pip install``'s ``<prefix>/share/upscaler/resources`` (pyproject's data-files),
    then a ``pip install --user``'s, under ``site.USER_BASE``."""
    installed = [
        Path(base) / "share" / "upscaler" / "resources"
        for base in (sys.prefix, site.USER_BASE)
        if base  # USER_BASE is None where user site-packages are disabled
    ]
    return [bundle_root() / "resources", *installed]


def resource_path(name: str) -> Path:
    """Absolute path of a bundled resource, e.g. ``resource_path("icon.png")``;
    the first place that has it (callers check ``is_file``)."""
    dirs = resource_dirs()
    return next((d / name for d in dirs if (d / name).is_file()), dirs[0] / name)


def log_dir() -> Path:
    """The user's log folder (created on demand)."""
    path = Path(user_log_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file() -> Path:
    """The app's log file inside ``log_dir()``."""
    return log_dir() / "upscaler.log"
