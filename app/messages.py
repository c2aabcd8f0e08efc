"""User-facing titles and hints for ``sr_core.errors`` (matched by class name,
so this module needs no core import)."""

from __future__ import annotations

ERROR_TITLES = (
    ("WeightsNotFoundError", "No model weights found"),
    ("WeightsError", "Cannot load the weights"),
    ("DeviceMemoryError", "Out of memory"),
    ("UnsupportedImageError", "Cannot use this image"),
    ("OutputExistsError", "File already exists"),
    ("OutputWriteError", "Cannot save the image"),
)
ERROR_HINTS = {
    "WeightsNotFoundError": "Use File ▸ Load weights… to pick a .safetensors file.",
    "WeightsError": "Use File ▸ Load weights… to pick another weights file.",
    "DeviceMemoryError": "Choose a smaller size or close other programs. On a GPU, "
    "Settings ▸ Device ▸ CPU uses the computer's memory instead.",
}


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(dialog title, message + what to do) for a core error."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    title = next((t for name, t in ERROR_TITLES if name in names), "Upscale failed")
    hint = next((h for name, h in ERROR_HINTS.items() if name in names), "")
    return title, f"{exc}\n\n{hint}".strip()
