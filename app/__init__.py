"""Upscaler's PyQt5 desktop app.  Only ``app.controller`` imports ``sr_core``."""

from __future__ import annotations

APP_NAME = "Upscaler"
ORG_NAME = "Upscaler"
