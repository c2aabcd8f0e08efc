"""Upscaler's inference core: the only API the app and the CLI use.

See docs/core-api.md.  This package never imports Qt.
"""

from __future__ import annotations

from sr_core import errors
from sr_core.inference import (
    Progress,
    Target,
    UpscaleOptions,
    auto_longest_side,
    iter_upscale,
    output_size,
    upscale,
)
from sr_core.model import SRModel, load_model

__version__ = "0.1.0"

__all__ = [
    "Progress",
    "SRModel",
    "Target",
    "UpscaleOptions",
    "__version__",
    "auto_longest_side",
    "errors",
    "iter_upscale",
    "load_model",
    "output_size",
    "upscale",
]
