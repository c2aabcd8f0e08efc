"""Command-line upscaler: ``upscaler IN... -o OUT`` (also ``python -m sr_core``).

Uses only the public core API (docs/core-api.md).  One input file and an
output file name writes exactly there; several inputs or a folder (searched
recursively) is a batch, written into the output folder as
``<stem>_<W>x<H>.<ext>``, mirroring the input folders' sub-folders.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

import sr_core
from sr_core import errors
from sr_core.batch import FORMAT_EXTENSIONS, Job, UsageError, plan_jobs
from sr_core.imageops import check_savable

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_EPILOG = """\
output:
  one input + OUT with an image extension -> written to OUT
  several inputs, a folder, or OUT an existing folder -> OUT is a folder
  (created if needed); files are named <stem>_<W>x<H>.<ext>, <ext> from
  --format or else the input's (png for other inputs). Inputs are never
  overwritten; existing outputs only with --overwrite.

exit codes:
  0    every image was written
  1    at least one image failed (listed at the end); the others were written
  2    usage or setup error: bad arguments, no input images, weights missing
       or unreadable, device unavailable; nothing was processed
  130  interrupted (Ctrl-C); no partial output file is left behind
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``upscaler`` argument parser."""
    p = argparse.ArgumentParser(
        prog="upscaler",
        description="Upscale images with the Upscaler super-resolution model.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="IN", help="image files or folders")
    p.add_argument("-o", "--output", metavar="OUT", help="output file or folder")
    size = p.add_argument_group(
        "size", "pick one; default: auto (1024 or 1280 px longest side, by memory)"
    )
    size.add_argument(
        "--size", type=_positive_int, metavar="N", help="longest side N px, aspect kept"
    )
    size.add_argument(
        "--scale", type=_positive_float, metavar="S", help="S times the input size"
    )
    size.add_argument(
        "--width",
        type=_positive_int,
        metavar="W",
        help="exact width (with --height; aspect not kept)",
    )
    size.add_argument("--height", type=_positive_int, metavar="H")
    run = p.add_argument_group("running")
    run.add_argument(
        "--tile",
        type=_positive_int,
        metavar="N",
        help="tile size in px: a multiple of 32, at least 64 "
        "(default: from free memory)",
    )
    run.add_argument(
        "--ensemble",
        type=int,
        default=1,
        choices=[1, 2, 4, 8],
        metavar="N",
        help="average N model passes over flipped/rotated copies: a little more "
        "detail for N times the time (1, 2, 4 or 8; default: 1)",
    )
    run.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda, cuda:N or mps (default: auto)",
    )
    run.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"]
    )
    run.add_argument(
        "--threads", type=_positive_int, metavar="N", help="CPU threads for inference"
    )
    run.add_argument(
        "--weights",
        type=Path,
        metavar="F",
        help="weights file (default: the shipped weights)",
    )
    out = p.add_argument_group("files")
    out.add_argument(
        "--quality",
        type=_quality,
        default=95,
        metavar="Q",
        help="JPEG/WebP quality 1-100 (default: 95; WebP 100 = lossless)",
    )
    out.add_argument(
        "--format",
        choices=sorted(FORMAT_EXTENSIONS),
        help="output format for folder outputs",
    )
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (never the inputs)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    p.add_argument(
        "--version",
        action="store_true",
        help="print the version and the model's name and date",
    )
    p.add_argument(
        "--self-test",
        action="store_true",
        help="load the weights, upscale a bundled 32×32 test image, check it, "
        "print one line; exit 0 = ok, 1 = failed (with the reason)",
    )
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} must be a number greater than 0")
    return value


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError("quality must be between 1 and 100")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see ``--help``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    _configure_logging(args.verbose)
    try:
        return _run(parser, args)
    except KeyboardInterrupt:
        _err("\nInterrupted.")
        return EXIT_INTERRUPTED


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.version:
        return _print_version(args.weights)
    if args.self_test:
        return _self_test(args.weights, args.device)
    try:
        options = _options(args)
        jobs = plan_jobs(args.inputs, args.output, args.format)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _err(f"upscaler: error: {exc}")
        return EXIT_USAGE
    try:
        model = sr_core.load_model(
            args.weights,
            device=args.device,
            precision=args.precision,
            threads=args.threads,
        )
    except (errors.WeightsError, ValueError) as exc:
        _err(f"upscaler: {exc}")
        return EXIT_USAGE
    _err(f"Model: {model.description()}")
    return run_jobs(
        jobs, model, options, quality=args.quality, overwrite=args.overwrite
    )


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    logging.getLogger("sr_core").setLevel(level)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _version() -> str:
    version = getattr(sr_core, "__version__", None)
    if version:
        return str(version)
    try:
        return metadata.version("upscaler")
    except metadata.PackageNotFoundError:
        return "unknown"


def _print_version(weights: Path | None) -> int:
    print(f"upscaler {_version()}")
    try:
        model = sr_core.load_model(weights, device="cpu")
    except errors.WeightsError as exc:
        print(f"model: none loaded ({exc})")
    else:
        date = model.created or "date unknown"
        print(f"model: {model.name} ({date})")
    return EXIT_OK


def _self_test(weights: Path | None, device: str) -> int:
    from sr_core.selftest import run_self_test

    try:
        print(run_self_test(weights, device=device))
    except (errors.SRCoreError, ValueError) as exc:
        _err(f"upscaler: self-test FAILED: {exc}")
        return EXIT_FAILED
    return EXIT_OK


def _options(args: argparse.Namespace) -> sr_core.UpscaleOptions:
    given = [name for name in ("size", "scale") if getattr(args, name) is not None]
    exact = args.width is not None or args.height is not None
    if len(given) + exact > 1:
        raise UsageError("choose one of --size, --scale or --width/--height")
    if exact and (args.width is None or args.height is None):
        raise UsageError("--width and --height must be given together")
    if args.size is not None:
        target = sr_core.Target.longest(args.size)
    elif args.scale is not None:
        target = sr_core.Target.scale(args.scale)
    elif exact:
        target = sr_core.Target.exact(args.width, args.height)
    else:
        target = sr_core.Target.auto()
    try:
        return sr_core.UpscaleOptions(
            target=target, tile=args.tile, ensemble=args.ensemble
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run_jobs(
    jobs: Sequence[Job],
    model: sr_core.SRModel,
    options: sr_core.UpscaleOptions,
    quality: int = 95,
    overwrite: bool = False,
) -> int:
    """Upscale every job, continuing past failures; returns the exit code."""
    failures: list[tuple[Path, str]] = []
    written: dict[Path, Path] = {}
    # --overwrite replaces earlier outputs, never a file this run still reads.
    inputs = {job.source.resolve() for job in jobs}
    try:
        for n, job in enumerate(jobs, 1):
            label = f"[{n}/{len(jobs)}] {job.source.name}"
            try:
                out = _run_one(
                    job, model, options, quality, overwrite, written, inputs, label
                )
            except errors.SRCoreError as exc:
                _err(f"{label}: FAILED: {exc}")
                failures.append((job.source, str(exc)))
            except MemoryError:
                reason = "not enough memory for this output size; choose a smaller one"
                _err(f"{label}: FAILED: {reason}")
                failures.append((job.source, reason))
            except Exception as exc:  # noqa: BLE001 - one bug must not end a batch
                log.exception("%s: unexpected error", label)
                reason = f"unexpected error (please report it): {exc!r}"
                _err(f"{label}: FAILED: {reason}")
                failures.append((job.source, reason))
            else:
                written[out.resolve()] = job.source
                print(f"{job.source} -> {out}")
    except KeyboardInterrupt:
        _err(
            f"\nInterrupted: {len(written)} of {len(jobs)} image(s) written; "
            "no partial file left."
        )
        return EXIT_INTERRUPTED
    if failures:
        _err(f"\n{len(written)} written, {len(failures)} failed:")
        for src, reason in failures:
            # Core messages usually name the file already.
            _err(f"  {reason}" if str(src) in reason else f"  {src}: {reason}")
        return EXIT_FAILED
    if len(jobs) > 1:
        _err(f"\nAll {len(written)} images written.")
    return EXIT_OK


def _run_one(
    job: Job,
    model: sr_core.SRModel,
    options: sr_core.UpscaleOptions,
    quality: int,
    overwrite: bool,
    written: dict[Path, Path],
    inputs: set[Path],
    label: str,
) -> Path:
    image = sr_core.read_image(job.source)
    for note in image.notes:
        _err(f"{label}: note: {note}")
    w, h = image.size
    size = sr_core.output_size((w, h), options.target, model)
    out = job.out_file or job.out_dir / sr_core.default_output_name(
        job.source, size, job.ext
    )
    # Checked before the slow part; save_image checks again, atomically.
    if out.resolve() in written:
        raise errors.OutputExistsError(
            f"{out} was already written from {written[out.resolve()]} in this run "
            "(same name and size); rename one of the inputs."
        )
    if out.resolve() in inputs:
        raise errors.OutputExistsError(f"refusing to overwrite the input {out}")
    if out.exists() and not overwrite:
        raise errors.OutputExistsError(f"{out} already exists (use --overwrite)")
    check_savable(out, size)
    pixels = _upscale_with_bar(image.pixels, model, options, label)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.OutputWriteError(f"cannot create {out.parent}: {exc}") from exc
    return sr_core.save_image(
        image.with_pixels(pixels), out, quality=quality, overwrite=overwrite
    )


def _upscale_with_bar(
    pixels: np.ndarray,
    model: sr_core.SRModel,
    options: sr_core.UpscaleOptions,
    label: str,
) -> np.ndarray:
    """Drive ``iter_upscale`` with a per-pass progress bar on stderr."""
    gen = sr_core.iter_upscale(pixels, model, options)
    bar = tqdm(desc=label, unit="pass", leave=False, disable=None, file=sys.stderr)
    try:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            if step.done == 0 or bar.total != step.total:
                bar.reset(total=step.total)  # also after an out-of-memory restart
            bar.update(step.done - bar.n)
    finally:
        gen.close()
        bar.close()
