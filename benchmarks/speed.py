"""CPU/GPU speed and memory of the inference paths, measured side by side.

For each output size, each configuration runs in its own fresh process (so peak
RSS belongs to that configuration alone): the eager fp32 baseline (weight norm
recomputed every call, NCHW, no folding, whole image) and the optimised path
(`load_model`: folded weight norm and BN, channels_last, bf16/fp16 autocast,
glibc malloc tuned by sr_core.allocator), whole image and tiled, tiled once
more with glibc's default malloc, and tiled with the 8-pass self-ensemble.
Prints seconds (best of --repeat after a warm-up), peak RSS, speed-up over the
baseline, and the PSNR of bf16 against fp32 output and of tiled against
whole-image output on a real photo.

    python benchmarks/speed.py [--weights F] [--sizes 1024 1280] [--repeat 2]

Without --weights (or shipped weights) a random resnet34 model is timed: speed
does not depend on weight values, but the PSNR figures then mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "baseline fp32 eager": {"kind": "baseline"},
    "optimised fp32": {"kind": "opt", "precision": "fp32", "tile": None},
    "optimised auto, whole": {"kind": "opt", "precision": "auto", "tile": None},
    "optimised auto, tiled": {"kind": "opt", "precision": "auto", "tile": 512},
    # The same without sr_core.allocator's malloc tuning, to show what it buys.
    "tiled, glibc malloc": {
        "kind": "opt",
        "precision": "auto",
        "tile": 512,
        "env": {"UPSCALER_MALLOC_TUNING": "0"},
    },
    # The app's "Best" detail: 8 passes over flipped/rotated copies per tile.
    "tiled, 8-pass ensemble": {
        "kind": "opt",
        "precision": "auto",
        "tile": 512,
        "ensemble": 8,
    },
}


def _photo(size: int) -> np.ndarray:
    from PIL import Image

    valid = ROOT.parent / "shared" / "data" / "valid"
    files = sorted(valid.glob("*")) if valid.is_dir() else []
    if files:
        img = Image.open(files[0]).convert("RGB")
    else:
        rng = np.random.default_rng(0)
        img = Image.fromarray((rng.random((300, 400, 3)) * 255).astype(np.uint8))
    img.thumbnail((size // 4, size // 4))
    return np.asarray(img)


def _worker(weights: str, size: int, cfg: dict, repeat: int, out_npy: str) -> dict:
    import torch

    from sr_core import Target, UpscaleOptions, load_model, upscale
    from sr_core.weights import build_model_from_weights, read_weights

    img = _photo(size)
    target = Target.exact(size, size)  # the issue asks for square outputs
    if cfg["kind"] == "baseline":
        state, info = read_weights(weights)
        net = build_model_from_weights(state, info).eval()
        mean = torch.tensor(info.mean).view(1, 3, 1, 1)
        std = torch.tensor(info.std).view(1, 3, 1, 1)
        from sr_core.inference import _resize, output_size

        w, h = output_size((img.shape[1], img.shape[0]), target)
        big = _resize(img, (w, h), info.resize_filter)
        x = torch.from_numpy(big.transpose(2, 0, 1).copy()).float()[None] / 255

        def run() -> np.ndarray:
            with torch.no_grad():
                y = net((x - mean) / std) * std + mean
            return (y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(
                np.uint8
            )

        prec = "fp32"
    else:
        model = load_model(weights, device="auto", precision=cfg["precision"])
        opts = UpscaleOptions(
            target, tile=cfg["tile"] or 4096, ensemble=cfg.get("ensemble", 1)
        )
        prec = model.precision

        def run() -> np.ndarray:
            return upscale(img, model, opts)

    out = run()  # warm-up (oneDNN picks kernels on the first call)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t)
    np.save(out_npy, out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    return {
        "seconds": min(times),
        "rss_mib": rss,
        "precision": prec,
        "threads": torch.get_num_threads(),
    }


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", help="weights file (default: shipped, else random)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 1280])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        res = _worker(
            job["weights"], job["size"], job["cfg"], job["repeat"], job["out"]
        )
        print(json.dumps(res))
        return 0

    tmp = Path(tempfile.mkdtemp())
    weights = args.weights
    if weights is None:
        from sr_core.errors import WeightsNotFoundError
        from sr_core.weights import default_weights_path

        try:
            weights = str(default_weights_path())
        except WeightsNotFoundError:
            from sr_core.arch import build_unet
            from sr_core.weights import WeightsInfo, save_weights

            weights = str(
                save_weights(
                    tmp / "random.safetensors",
                    build_unet(),
                    WeightsInfo(name="random resnet34"),
                )
            )
            print("No trained weights: timing a random resnet34 model.")
    print(f"weights: {weights}")
    rows = []
    for size in args.sizes:
        outs = {}
        for name, cfg in CONFIGS.items():
            job = {
                "weights": weights,
                "size": size,
                "cfg": cfg,
                "repeat": args.repeat,
                "out": str(tmp / f"{size}-{len(outs)}.npy"),
            }
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(job)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **cfg.get("env", {})},
            )
            if proc.returncode:
                print(proc.stderr[-2000:])
                return 1
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            outs[name] = np.load(job["out"])
            rows.append((size, name, res))
        base = outs["baseline fp32 eager"]
        print(f"\n{base.shape[1]}x{base.shape[0]} output:")
        print(
            f"  {'config':24} {'prec':5} {'seconds':>8} {'peak RSS MiB':>13} "
            f"{'speed-up':>9}"
        )
        t0 = next(
            r[2]["seconds"] for r in rows if r[0] == size and r[1].startswith("base")
        )
        for s, name, res in rows:
            if s == size:
                print(
                    f"  {name:24} {res['precision']:5} {res['seconds']:8.2f} "
                    f"{res['rss_mib']:13.0f} {t0 / res['seconds']:8.2f}x"
                )
        print(
            f"  PSNR optimised fp32 vs baseline: "
            f"{_psnr(outs['optimised fp32'], base):.1f} dB"
        )
        print(
            f"  PSNR bf16/fp16 vs fp32 (whole image): "
            f"{_psnr(outs['optimised auto, whole'], outs['optimised fp32']):.1f} dB"
        )
        print(
            f"  PSNR tiled (512) vs whole image: "
            f"{_psnr(outs['optimised auto, tiled'], outs['optimised auto, whole']):.1f}"
            " dB"
        )
    print(f"\nthreads: {rows[0][2]['threads']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
