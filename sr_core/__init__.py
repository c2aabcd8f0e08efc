"""Upscaler's inference core: the only API the app and the CLI use.

See docs/core-api.md.  This package never imports Qt.  Names are imported on
first use (PEP 562), so ``import sr_core`` stays cheap and torch loads only when
a name that needs it is touched: the app imports torch off its GUI thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "errors": "sr_core.errors",
    "ImageData": "sr_core.imageops",
    "check_savable": "sr_core.imageops",
    "default_output_name": "sr_core.imageops",
    "read_image": "sr_core.imageops",
    "save_image": "sr_core.imageops",
    "Progress": "sr_core.inference",
    "Target": "sr_core.inference",
    "UpscaleOptions": "sr_core.inference",
    "auto_longest_side": "sr_core.inference",
    "iter_upscale": "sr_core.inference",
    "output_size": "sr_core.inference",
    "upscale": "sr_core.inference",
    "SRModel": "sr_core.model",
    "load_model": "sr_core.model",
    "keep_freed_memory": "sr_core.allocator",
    "release_free_memory": "sr_core.allocator",
}

__all__ = [
    "ImageData",
    "Progress",
    "SRModel",
    "Target",
    "UpscaleOptions",
    "__version__",
    "auto_longest_side",
    "check_savable",
    "default_output_name",
    "errors",
    "iter_upscale",
    "keep_freed_memory",
    "load_model",
    "output_size",
    "read_image",
    "release_free_memory",
    "save_image",
    "upscale",
]


def __getattr__(name: str) -> object:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'sr_core' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith(f".{name}") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # also what PyInstaller's import scan sees
    from sr_core import errors
    from sr_core.allocator import keep_freed_memory, release_free_memory
    from sr_core.imageops import (
        ImageData,
        check_savable,
        default_output_name,
        read_image,
        save_image,
    )
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
