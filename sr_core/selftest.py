"""``upscaler --self-test``: prove that an installed or frozen copy works.

Loads the weights (the shipped ones unless a file is given), upscales the
bundled 32×32 test card ``resources/selftest.png`` 2× and checks the result's
size and that it is not blank.  Needs no display and no user files, so the
packaging smoke test runs it on the frozen executable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from sr_core.errors import SRCoreError
from sr_core.imageops import read_image
from sr_core.inference import Target, UpscaleOptions, upscale
from sr_core.model import load_model
from sr_core.weights import bundled_weights_dirs

SUCCESS_PREFIX = "Upscaler self-test OK"
IMAGE_NAME = "selftest.png"
# A working model's output of the test card varies by far more than this (its
# standard deviation is ~60 grey levels); a blank or constant image is ~0.
_MIN_STD = 4.0


class SelfTestError(SRCoreError):
    """The self-test ran but its result was wrong; the message says how."""


def selftest_image_candidates() -> list[Path]:
    """Where the test card may be: ``resources/`` beside each weights folder
    (``<bundle>/resources`` frozen, ``<repo>/resources`` from source)."""
    return [d.parent / "resources" / IMAGE_NAME for d in bundled_weights_dirs()]


def run_self_test(
    weights: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> str:
    """Run the self-test and return its one-line success message.

    Args:
        weights: weights file; None uses the shipped weights.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
    Returns:
        A line starting with ``SUCCESS_PREFIX``, naming the model, the sizes,
        the device and the time taken.
    Raises:
        WeightsNotFoundError: no weights given and none shipped.
        SRCoreError: other weights or image problems (the message says which).
        SelfTestError: test card missing, or the output has the wrong size or is blank.
        ValueError: unknown or unavailable device.
    """
    start = time.perf_counter()
    candidates = selftest_image_candidates()
    card = next((p for p in candidates if p.is_file()), None)
    if card is None:
        raise SelfTestError(
            f"test image {IMAGE_NAME} not found (looked in "
            + ", ".join(str(p.parent) for p in candidates)
            + "); the installation is incomplete."
        )
    pixels = read_image(card).pixels
    model = load_model(weights, device=device, precision="fp32")
    out = upscale(pixels, model, UpscaleOptions(target=Target.scale(2)))
    h, w = pixels.shape[:2]
    if out.shape[:2] != (2 * h, 2 * w):
        raise SelfTestError(
            f"expected a {2 * w}×{2 * h} result, got {out.shape[1]}×{out.shape[0]}."
        )
    std = float(np.asarray(out, dtype=np.float64).std())
    if not std >= _MIN_STD:
        raise SelfTestError(
            f"the {2 * w}×{2 * h} result is blank (pixel std {std:.2f}); the "
            "weights or the inference libraries are broken."
        )
    seconds = time.perf_counter() - start
    return (
        f"{SUCCESS_PREFIX}: {model.name} upscaled {w}×{h} to {2 * w}×{2 * h} "
        f"on {model.device} in {seconds:.1f} s"
    )
