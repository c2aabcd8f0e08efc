"""Dump the state-dict key/shape list of fastai v1's own super-resolution U-Net.

Writes ``tests/core/data/fastai_unet_<encoder>_keys.json``: the ``{key: shape}``
list, in order, of the model that fastai 1.0.61's ``unet_learner`` builds for the
lesson-7 super-resolution setup (``blur=True, norm_type=NormType.Weight``, no
self-attention, ``y_range=None``, 3 output channels), plus the top-level keys of
the file ``learn.save()`` writes.  ``tests/core/test_fastai_import.py`` checks
``sr_core.weights.fastai_to_native_keys`` against it.

This script is NOT part of the project and fastai is NOT a project dependency.
It needs fastai 1.0.61 in a separate, throw-away virtualenv, e.g.::

    python3 -m venv /tmp/fastai-venv
    /tmp/fastai-venv/bin/pip install torch torchvision "setuptools<80"
    /tmp/fastai-venv/bin/pip install fastai==1.0.61 --no-deps
    /tmp/fastai-venv/bin/pip install fastprogress pandas matplotlib scipy requests \
        beautifulsoup4 packaging pyyaml numexpr bottleneck nvidia-ml-py3
    /tmp/fastai-venv/bin/python scripts/make_fastai_fixture.py

The encoder is built with ``pretrained=False`` (random weights, no download), and
the learner gets a throw-away data bunch of a few generated images, so nothing is
fetched.  ``--checkpoint-dir DIR`` also keeps a real ``learn.save()`` file per
encoder (large; never commit it) for checking the importer by hand.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from fastai import __version__ as fastai_version
from fastai.vision import (
    ImageImageList,
    NormType,
    imagenet_stats,
    models,
    unet_learner,
)
from PIL import Image

ENCODERS = {"resnet18": models.resnet18, "resnet34": models.resnet34}
LEARNER_KWARGS = {"blur": True, "norm_type": "NormType.Weight", "pretrained": False}


def _tiny_databunch(folder: Path, size: int = 64):
    rng = np.random.default_rng(0)
    for i in range(4):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return (
        ImageImageList.from_folder(folder)
        .split_by_rand_pct(0.5, seed=42)
        .label_from_func(lambda p: p)
        .transform(size=size, tfm_y=True)
        .databunch(bs=2, num_workers=0)
        .normalize(imagenet_stats, do_y=True)
    )


def _to_json(fixture: dict) -> str:
    """Indented JSON with one ``"key": [shape]`` line per tensor (diff-friendly)."""
    head = {k: v for k, v in fixture.items() if k != "state_dict"}
    lines = [json.dumps(head, indent=1)[:-2] + ",", ' "state_dict": {']
    items = [
        f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in fixture["state_dict"].items()
    ]
    lines.append(",\n".join(items))
    lines.append(" }\n}\n")
    return "\n".join(lines)


def dump(encoder: str, out_dir: Path, checkpoint_dir: Path | None) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        data = _tiny_databunch(Path(tmp))
        learn = unet_learner(
            data,
            ENCODERS[encoder],
            pretrained=False,
            blur=True,
            norm_type=NormType.Weight,
        )
        # A real learn.save() (with optimiser state) to record the file layout.
        learn.create_opt(1e-3)
        saved = learn.save("fixture", return_path=True, with_opt=True)
        checkpoint = torch.load(saved, map_location="cpu", weights_only=True)
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            kept = checkpoint_dir / f"fastai_unet_{encoder}.pth"
            kept.write_bytes(Path(saved).read_bytes())
            print(f"kept checkpoint {kept}")  # noqa: T201
    state = checkpoint["model"]
    fixture = {
        "generator": "scripts/make_fastai_fixture.py",
        "fastai_version": fastai_version,
        "torch_version": torch.__version__,
        "encoder": encoder,
        "unet_learner_kwargs": LEARNER_KWARGS,
        "checkpoint_top_level_keys": sorted(checkpoint),
        "state_dict": {k: list(v.shape) for k, v in state.items()},
    }
    out = out_dir / f"fastai_unet_{encoder}_keys.json"
    out.write_text(_to_json(fixture))
    print(f"{out}: {len(state)} tensors")  # noqa: T201
    return out


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=root / "tests/core/data")
    parser.add_argument(
        "--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS)
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for encoder in args.encoders:
        dump(encoder, args.out_dir, args.checkpoint_dir)


if __name__ == "__main__":
    main()
