"""Network definitions only: no file I/O, no device choice."""

from __future__ import annotations

from sr_core.arch.unet import SuperResUNet, UNetConfig, build_unet

__all__ = ["SuperResUNet", "UNetConfig", "build_unet"]
