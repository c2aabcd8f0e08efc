"""Upscaler's PyQt5 desktop app.

Only ``app.controller`` calls ``sr_core``; ``app.__main__`` reads its
``__version__``, which loads nothing."""

from __future__ import annotations

APP_NAME = "Upscaler"
ORG_NAME = "Upscaler"
