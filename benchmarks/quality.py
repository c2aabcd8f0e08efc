"""Image-quality benchmark: the model vs bicubic and Lanczos, PSNR-Y / SSIM-Y.

Evaluated as in the super-resolution literature.  For each HR image: crop at the
top left to a multiple of the scale, make the LR input with an antialiased
Pillow bicubic downscale (``sr_core.degrade.make_lr``, optionally JPEG-degraded),
upscale it back to exactly the HR size with each method, and compare on the Y
channel with ``scale`` pixels cropped from every side.  Means are over images.

Usage (from the repository root)::

    python -m benchmarks.quality --hr DIR --scale 4 [--degrade jpeg60]
        [--weights FILE] [--no-model] [--limit N] [--csv OUT]
        [--device auto] [--precision fp32]

Without weights (none given and none shipped) the model row is skipped and the
core's explanation is printed; bicubic and Lanczos are still measured.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

if __package__ in (None, ""):
    # Run as a script: benchmark this checkout's sr_core, not an installed one.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sr_core.degrade import (  # noqa: E402
    DEGRADATIONS,
    crop_to_multiple,
    make_lr,
    parse_degrade,
)
from sr_core.errors import WeightsError, WeightsNotFoundError  # noqa: E402
from sr_core.metrics import SSIM_WINDOW, psnr_y, ssim_y  # noqa: E402

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
BASELINES = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


@dataclass
class Scores:
    """Per-image PSNR-Y, SSIM-Y and upscale time of one method, in image order."""

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def mean(self) -> tuple[float, float]:
        return _mean(self.psnr), _mean(self.ssim)


def _mean(values: Sequence[float]) -> float:
    # An identical image gives PSNR inf; keep it out of the mean rather than
    # letting one image make the average infinite (never happens with real data).
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` or below it, sorted by path."""
    if not folder.is_dir():
        raise SystemExit(f"error: HR folder not found: {folder}")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise SystemExit(
            f"error: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}"
        )
    return files


def load_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB with EXIF orientation applied."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB")).copy()


def resize_exact(lr: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """Pillow resize of an LR array to ``size`` = (w, h) with a baseline filter."""
    return np.asarray(Image.fromarray(lr).resize(size, BASELINES[method]))


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description="PSNR-Y/SSIM-Y of the model vs bicubic and Lanczos on HR images.",
    )
    parser.add_argument("--hr", type=Path, required=True, help="folder of HR images")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
    parser.add_argument(
        "--degrade",
        default="none",
        help=f"LR degradation: {', '.join(DEGRADATIONS)} (or any jpegNN)",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights file (default: the shipped weights, or $UPSCALER_WEIGHTS)",
    )
    parser.add_argument(
        "--no-model", action="store_true", help="measure bicubic and Lanczos only"
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=1,
        choices=(1, 2, 4, 8),
        help="model passes per tile over flipped/rotated copies (default: 1)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--csv", type=Path, default=None, help="write per-image rows")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--precision",
        default="fp32",
        help="fp32 (default, reproducible), bf16, fp16 or auto (what the app uses)",
    )
    args = parser.parse_args(argv)
    try:
        parse_degrade(args.degrade)
    except ValueError as exc:
        parser.error(str(exc))
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    return args


Upscaler = Callable[[np.ndarray, int, int], np.ndarray]


def load_upscaler(args: argparse.Namespace) -> tuple[Upscaler | None, str]:
    """The model as ``f(lr, w, h) -> sr`` through the public API, plus a status line.

    Returns ``(None, reason)`` when the model row is skipped: ``--no-model``, or
    no weights found (the reason is the core's own message).

    Raises:
        WeightsError: weights exist but are corrupt or do not fit the network.
    """
    if args.no_model:
        return None, "Model row skipped (--no-model)."
    # Imported here so bicubic/Lanczos runs need only the numpy/Pillow parts.
    from sr_core import Target, UpscaleOptions, load_model, upscale

    try:
        model = load_model(args.weights, device=args.device, precision=args.precision)
    except WeightsNotFoundError as exc:
        return None, f"Model row skipped: no weights found. {exc}"

    def run_model(lr: np.ndarray, w: int, h: int) -> np.ndarray:
        opts = UpscaleOptions(target=Target.exact(w, h), ensemble=args.ensemble)
        return upscale(lr, model, opts)

    return run_model, f"Model: {model.description()}"


def run(
    args: argparse.Namespace,
) -> tuple[dict[str, Scores], list[dict[str, object]]]:
    """Evaluate every image; returns scores per method and per-image CSV rows."""
    model, status = load_upscaler(args)
    print(status)
    files = list_images(args.hr)[: args.limit]
    methods = list(BASELINES) + ([] if model is None else ["model"])
    scores = {m: Scores() for m in methods}
    rows: list[dict[str, object]] = []
    min_side = SSIM_WINDOW + 2 * args.scale
    for i, path in enumerate(files, 1):
        hr = crop_to_multiple(load_rgb(path), args.scale)
        h, w = hr.shape[:2]
        if min(h, w) < min_side:
            print(f"skip {path.name}: {w}x{h} < {min_side} px a side", file=sys.stderr)
            continue
        lr = make_lr(hr, args.scale, args.degrade)
        row: dict[str, object] = {"image": path.name, "width": w, "height": h}
        for method in methods:
            start = time.perf_counter()
            if method == "model":
                sr = model(lr, w, h)  # type: ignore[misc]
            else:
                sr = resize_exact(lr, (w, h), method)
            elapsed = time.perf_counter() - start
            if sr.shape != hr.shape:
                raise RuntimeError(f"{method} gave {sr.shape}, expected {hr.shape}")
            p, s = psnr_y(sr, hr, args.scale), ssim_y(sr, hr, args.scale)
            scores[method].psnr.append(p)
            scores[method].ssim.append(s)
            scores[method].seconds.append(elapsed)
            row[f"{method}_psnr"], row[f"{method}_ssim"] = round(p, 4), round(s, 5)
            if method == "model":
                row["model_seconds"] = round(elapsed, 3)
        rows.append(row)
        print(f"[{i}/{len(files)}] {path.name} {w}x{h}", file=sys.stderr)
    return scores, rows


def format_table(args: argparse.Namespace, scores: dict[str, Scores]) -> str:
    """The summary table: method x PSNR/SSIM means, plus model - bicubic."""
    n = len(scores["bicubic"].psnr)
    lines = [
        f"{n} image{'' if n == 1 else 's'} from {args.hr}, x{args.scale}, "
        f"degrade {args.degrade}, "
        + (f"model ensemble {args.ensemble}, " if args.ensemble > 1 else "")
        + f"Y channel, border {args.scale} px",
        f"{'method':<17}{'PSNR-Y (dB)':>12}{'SSIM-Y':>10}",
    ]
    for method, sc in scores.items():
        p, s = sc.mean()
        lines.append(f"{method:<17}{p:>12.3f}{s:>10.4f}")
    if "model" in scores:
        (mp, ms), (bp, bs) = scores["model"].mean(), scores["bicubic"].mean()
        lines.append(f"{'model - bicubic':<17}{mp - bp:>+12.3f}{ms - bs:>+10.4f}")
        secs = scores["model"].seconds
        lines.append(
            f"model time: {sum(secs):.1f} s total, {np.mean(secs):.2f} s/image"
        )
    return "\n".join(lines)


def write_csv(
    path: Path, rows: list[dict[str, object]], scores: dict[str, Scores]
) -> None:
    """Per-image rows, then one ``MEAN`` row (PSNR/SSIM means over images)."""
    columns = ["image", "width", "height"]
    for method in scores:
        columns += [f"{method}_psnr", f"{method}_ssim"]
    if "model" in scores:
        columns.append("model_seconds")
    mean_row: dict[str, object] = {"image": "MEAN", "width": "", "height": ""}
    for method, sc in scores.items():
        p, s = sc.mean()
        mean_row[f"{method}_psnr"], mean_row[f"{method}_ssim"] = (
            round(p, 4),
            round(s, 5),
        )
    if "model" in scores:
        mean_row["model_seconds"] = round(float(np.mean(scores["model"].seconds)), 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        writer.writerow(mean_row)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parse_args(argv)
    try:
        scores, rows = run(args)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not scores["bicubic"].psnr:
        print("error: no image was large enough to evaluate", file=sys.stderr)
        return 1
    print(format_table(args, scores))
    if args.csv is not None:
        write_csv(args.csv, rows, scores)
        print(f"per-image results: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
