"""Evaluate exported weights on the validation photos and ship them in weights/.

    python scripts/ship_weights.py RUN/stage-b160.safetensors [--valid DIR] [--force]

Runs benchmarks.quality at x2, x4 and x4 + JPEG q60 (fp32, the literature's
protocol) and appends the result to the evaluation log (weights/manifest.json and
MODEL_CARD.md). Only if the new model is clearly better than the shipped one
(≥ 0.1 dB PSNR-Y in one setting and no more than 0.05 dB worse in any, ≥ 0.02 dB
better in every setting, or ≥ 0.02 dB better at x4 and ≥ 0.01 dB in every setting;
or --force) does it replace the shipped file and rewrite
the manifest (sha256, architecture) and the whole card. Each shipped file adds
~80 MB to git history, so files are replaced, never accumulated.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import quality  # noqa: E402
from sr_core.weights import read_weights  # noqa: E402

WEIGHTS = ROOT / "weights"
MANIFEST = WEIGHTS / "manifest.json"
SETTINGS = (("x2", 2, "none"), ("x4", 4, "none"), ("x4 jpeg60", 4, "jpeg60"))
MIN_GAIN_DB = 0.1
MAX_LOSS_DB = 0.05  # about the run-to-run noise of the 50-photo valid set
# A short cycle (a slow host's session) gains a little everywhere; shipping it lets
# the next session build on it, since run folders may not outlive a session.
MIN_STEADY_GAIN_DB = 0.02
# x4 is the headline setting; JPEG input gains slowest, and holding back files that
# gained everywhere lost four chains of cycles with their hosts (refine-40 to 52).
HEADLINE = "x4"
MIN_HEADLINE_GAIN_DB = 0.02
MIN_ANY_GAIN_DB = 0.01


def clearly_better(
    new: dict[str, dict[str, float]], shipped: dict[str, dict[str, float]] | None
) -> tuple[bool, str]:
    """Gate: a gain of ≥ MIN_GAIN_DB in some setting and a loss of ≤ MAX_LOSS_DB in
    all, a gain of ≥ MIN_STEADY_GAIN_DB in every setting, or a gain of
    ≥ MIN_HEADLINE_GAIN_DB at x4 and ≥ MIN_ANY_GAIN_DB in every setting."""
    if not shipped:
        return True, "nothing shipped yet"
    diffs = {
        label: new[label]["model_psnr"] - shipped[label]["model_psnr"]
        for label, _, _ in SETTINGS
    }
    summary = ", ".join(f"{label} {d:+.3f} dB" for label, d in diffs.items())
    gain, worst = max(diffs.values()), min(diffs.values())
    ok = (
        (gain >= MIN_GAIN_DB and worst >= -MAX_LOSS_DB)
        or worst >= MIN_STEADY_GAIN_DB
        or (diffs[HEADLINE] >= MIN_HEADLINE_GAIN_DB and worst >= MIN_ANY_GAIN_DB)
    )
    return ok, summary


def evaluate(weights: Path, valid: Path) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM per setting and method, from benchmarks.quality's CSV."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, scale, degrade in SETTINGS:
            out = Path(tmp) / f"{scale}-{degrade}.csv"
            argv = [
                "--hr",
                str(valid),
                "--scale",
                str(scale),
                "--degrade",
                degrade,
                "--weights",
                str(weights),
                "--precision",
                "fp32",
                "--csv",
                str(out),
            ]
            if quality.main(argv) != 0:
                raise SystemExit(f"quality benchmark failed for {label}")
            with out.open() as fh:
                mean = next(r for r in csv.DictReader(fh) if r["image"] == "MEAN")
            results[label] = {
                k: float(v) for k, v in mean.items() if k.endswith(("_psnr", "_ssim"))
            }
    return results


def _cell(s: dict[str, float]) -> str:
    gain = s["model_psnr"] - s["bicubic_psnr"]
    return f"{s['model_psnr']:.2f} / {s['model_ssim']:.4f} ({gain:+.2f})"


def lineage(training: dict) -> list[dict]:
    """The runs behind a weights file, oldest first: a warm-started run's
    summary holds its parent's under ``init_from.training``."""
    runs = []
    while training:
        runs.append(training)
        training = training.get("init_from", {}).get("training", {})
    return runs[::-1]


_SHIPPED = {True: "yes", False: "no", None: "?"}  # None: logged before the flag existed


def model_card(info, manifest: dict) -> str:  # noqa: ANN001
    t = info.training
    runs = lineage(t)
    recipe = t.get("recipe", {})
    degr = recipe.get("degradation", {})
    stages = "\n".join(
        f"| {i} | {r.get('recipe', {}).get('name')} | {s['name']} | {s['crop']} "
        f"| {s['batch_size']} | {s['epochs']} | {s['lr']} | {s['pct_start']} |"
        for i, r in enumerate(runs, 1)
        for s in r.get("recipe", {}).get("stages", [])
    )
    evals = "\n".join(
        f"| {e['date']} | {e['name']} | {_SHIPPED[e.get('shipped')]} "
        f"| {e['steps']} | {e['hours']:.2f} | "
        + " | ".join(_cell(e["scores"][lab]) for lab, _, _ in SETTINGS)
        + " |"
        for e in manifest["evaluations"]
    )
    shipped = manifest["files"].get(manifest["default"], {})
    current = shipped.get("scores", {})
    base = "\n".join(
        f"| {lab} | {s['bicubic_psnr']:.2f} / {s['bicubic_ssim']:.4f} | "
        f"{s['lanczos_psnr']:.2f} / {s['lanczos_ssim']:.4f} | "
        f"{s['model_psnr']:.2f} / {s['model_ssim']:.4f} |"
        for lab, s in current.items()
    )
    data = t.get("data", {})
    whole = degr.get("integer_scale_prob", 0.0)
    scales = f"×{degr.get('scale_min')}–{degr.get('scale_max')}"
    if whole:
        picks = degr.get("integer_scales")
        which = f" {', '.join(f'×{f}' for f in picks)}" if picks else ""
        scales += f" (whole-number factors{which} with p {whole})"
    averaged = (
        f"\n- Weights: the last run's {t['weights']} (recipe `ema_decay`), not"
        " its final step's weights."
        if t.get("weights")
        else ""
    )
    return f"""# Model card: {info.name}

Created {info.created}. File: `{manifest["default"]}` (fp16 safetensors; sha256 in
`manifest.json`).

## Architecture
U-Net with a torchvision **{info.arch.encoder}** encoder (fastai v1 `DynamicUnet`
rebuild: PixelShuffle upsampling with blur, ICNR init {
        "on" if info.arch.icnr else "off"
    }, weight-normalised decoder convs, skip BatchNorms), 3-channel output, no
output activation, ImageNet normalisation. Input: the image resized to the output
size with Pillow **{info.resize_filter}**; the network restores detail at that size,
so one model serves every output size.

## Training
- Data: real photos from `shared/data/train` ({data.get("train_images")} images:
  ImageNet sample, BSDS200 train, T91, Sun–Hays 80; see `shared/data/README.md`),
  validated on the 50 photos of `shared/data/valid`. Licences: research use.
- From scratch (no ImageNet weights were reachable on the build machine); loss:
  `{recipe.get("loss")}`; recipe `{recipe.get("name")}`, AdamW (β2 0.99, decoupled
  wd {recipe.get("weight_decay")}), fastai one-cycle per stage; bf16 autocast on
  CPUs with bf16 kernels, fp32 on others.
- Degradations: HR crop downscaled {scales}
  with {", ".join(sorted(set(degr.get("down_filters", []))))}; JPEG with probability
  {degr.get("jpeg_prob")} at quality {degr.get("jpeg_quality")}; noise p
  {degr.get("noise_prob")}; blur p {degr.get("blur_prob")}; resized back with
  {degr.get("up_filter")}; random crops and dihedral flips.
- Runs ({len(runs)}; each after the first starts from the previous one's weights
  with a fresh one-cycle), degradations above are the last run's:

| run | recipe | stage | crop | batch | epochs | max LR | pct_start |
|---|---|---|---|---|---|---|---|
{stages}

- Done in all: {t.get("steps")} steps, {t.get("samples_seen")}
  samples, {t.get("hours")} wall hours ({t.get("cpu_hours")} CPU hours) on a 2-core
  CPU.{averaged}

## Quality on `shared/data/valid` (50 photos)
PSNR-Y (dB) / SSIM-Y, border = scale, LR by antialiased Pillow bicubic downscale
(`benchmarks/quality.py`, fp32):

| setting | bicubic | Lanczos | this model |
|---|---|---|---|
{base}

Not measured on Set5/Set14/BSD100 (not available on the build machine).

## Evaluation log
Model PSNR / SSIM (gain over bicubic in dB). Shipped "no": evaluated, but not clearly
better than the file shipped at the time, so not committed:

| date | name | shipped | steps | hours | x2 | x4 | x4 jpeg60 |
|---|---|---|---|---|---|---|---|
{evals}
"""


def replace_shipped(src: Path, name: str, folder: Path) -> Path:
    """Make ``folder/name`` a copy of ``src``, the only weights file there.

    Copied in first (atomically), the others dropped after: the candidate may
    itself sit in ``folder`` under another name, and a failed copy must leave
    the shipped file in place.
    """
    dest = folder / name
    tmp = folder / f".{name}.part"
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    for old in folder.glob("*.safetensors"):
        if old != dest:
            old.unlink()
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("weights", type=Path)
    p.add_argument("--valid", type=Path, default=ROOT.parent / "shared/data/valid")
    p.add_argument("--force", action="store_true", help="ship even if not better")
    args = p.parse_args(argv)
    _, info = read_weights(args.weights)
    scores = evaluate(args.weights, args.valid)
    manifest = (
        json.loads(MANIFEST.read_text())
        if MANIFEST.exists()
        else {"default": None, "files": {}, "evaluations": []}
    )
    t = info.training
    manifest["evaluations"].append(
        {
            "date": info.created,
            "name": info.name,
            "steps": t.get("steps", 0),
            "hours": t.get("hours", 0.0),
            "scores": scores,
        }
    )
    shipped = manifest["default"] and manifest["files"][manifest["default"]]
    better, summary = clearly_better(scores, shipped and shipped["scores"])
    print(f"PSNR-Y vs the shipped model: {summary}")
    manifest["evaluations"][-1]["shipped"] = better or args.force
    if not better and not args.force:
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
        if shipped:  # the card's evaluation log lists this try too
            _, shipped_info = read_weights(WEIGHTS / manifest["default"])
            (WEIGHTS / "MODEL_CARD.md").write_text(model_card(shipped_info, manifest))
        print(
            f"not shipped: needs ≥ {MIN_GAIN_DB} dB over the shipped model in one "
            f"setting and no loss over {MAX_LOSS_DB} dB in any, or ≥ "
            f"{MIN_STEADY_GAIN_DB} dB in every setting, or ≥ {MIN_HEADLINE_GAIN_DB} "
            f"dB at {HEADLINE} and ≥ {MIN_ANY_GAIN_DB} dB in every setting "
            "(evaluation logged in manifest.json and MODEL_CARD.md)"
        )
        return 1
    name = f"{info.name}.safetensors"
    replace_shipped(Path(args.weights), name, WEIGHTS)
    manifest["default"] = name
    manifest["files"] = {
        name: {
            "sha256": hashlib.sha256((WEIGHTS / name).read_bytes()).hexdigest(),
            "arch": info.arch.to_dict(),
            "created": info.created,
            "scores": scores,
        }
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    (WEIGHTS / "MODEL_CARD.md").write_text(model_card(info, manifest))
    print(f"shipped weights/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
