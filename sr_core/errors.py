"""Errors raised by sr_core.  Each message says what went wrong and what to do."""

from __future__ import annotations


class SRCoreError(Exception):
    """Base class of every error sr_core raises on purpose."""


class WeightsError(SRCoreError):
    """A weights file is missing, unreadable or does not fit the architecture."""


class WeightsNotFoundError(WeightsError):
    """No weights file where one was expected."""


class CorruptWeightsError(WeightsError):
    """The file is truncated, not a weights file, or an unsafe pickle."""


class WeightsMismatchError(WeightsError):
    """Tensors are missing, unexpected or of the wrong shape for the architecture."""


class UnsupportedImageError(SRCoreError):
    """The input cannot be decoded, is empty, too large, or of an unusable kind."""


class DeviceMemoryError(SRCoreError):
    """The device ran out of memory even with the smallest tile."""


class OutputExistsError(SRCoreError):
    """Refused to overwrite an existing file without an explicit overwrite flag."""


class OutputWriteError(SRCoreError):
    """The output could not be written (read-only folder, full disk, bad format)."""


class OutputTooLargeError(OutputWriteError):
    """The image is larger than its file format can hold (JPEG, WebP): only this
    image fails, unlike a full disk."""


class CancelledError(SRCoreError):
    """The caller cancelled a running upscale."""
