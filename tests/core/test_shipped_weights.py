"""The weights in weights/ must be real, intact and better than bicubic.

Skipped only when no weights are shipped at all; a shipped file that is
untrained, corrupt or does not match its manifest fails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_core import Target, UpscaleOptions, load_model, upscale
from sr_core.degrade import crop_to_multiple, make_lr
from sr_core.metrics import psnr_y

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS_DIR = ROOT / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
VALID = ROOT.parent / "shared" / "data" / "valid"
# Three fixed validation photos of different sources (ImageNet, BSDS, Sun-Hays).
VALID_PICKS = ("imnet_", "bsds200_", "sunhays_")

pytestmark = pytest.mark.slow


def _shipped() -> Path:
    if not MANIFEST.is_file():
        pytest.skip("no weights shipped in weights/")
    return WEIGHTS_DIR / json.loads(MANIFEST.read_text())["default"]


def test_manifest_matches_the_file():
    path = _shipped()
    entry = json.loads(MANIFEST.read_text())["files"][path.name]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == entry["sha256"], "weights file does not match manifest.json"
    model = load_model(path, device="cpu")
    assert model.info.arch.to_dict() == entry["arch"]
    assert (WEIGHTS_DIR / "MODEL_CARD.md").is_file()


def _valid_images() -> list[np.ndarray]:
    if not VALID.is_dir():
        pytest.skip(f"validation photos not found in {VALID}")
    files = sorted(VALID.iterdir())
    picks = [next(f for f in files if f.name.startswith(tag)) for tag in VALID_PICKS]
    return [np.asarray(Image.open(p).convert("RGB")) for p in picks]


def test_shipped_model_beats_bicubic_at_x4():
    model = load_model(_shipped(), device="cpu", precision="fp32")
    for hr in _valid_images():
        hr = crop_to_multiple(hr[:256, :256], 4)
        h, w = hr.shape[:2]
        lr = make_lr(hr, 4)
        bicubic = np.asarray(
            Image.fromarray(lr).resize((w, h), Image.Resampling.BICUBIC)
        )
        sr = upscale(lr, model, UpscaleOptions(Target.exact(w, h)))
        gain = psnr_y(sr, hr, 4) - psnr_y(bicubic, hr, 4)
        assert gain > 0.1, f"model is {gain:+.2f} dB vs bicubic"
