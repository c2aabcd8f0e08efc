"""``python -m sr_core.training {train,export,average,lr-find}``
(also ``upscaler-train``)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from sr_core.arch.encoder import ENCODERS, PretrainedWeightsUnavailableError
from sr_core.errors import WeightsError
from sr_core.training.config import (
    LOSSES,
    RecipeError,
    load_recipe,
    shipped_recipes,
)
from sr_core.training.data import DataError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upscaler-train", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, seed_default: str) -> None:
        sp.add_argument("--data", required=True, help="folder of HR training images")
        sp.add_argument(
            "--valid",
            help="folder of HR validation images (default: "
            "a seeded 10%% split of --data)",
        )
        sp.add_argument("--out", required=True, help="run folder (checkpoints, CSV)")
        sp.add_argument(
            "--recipe",
            default="cpu",
            help=f"shipped recipe name ({', '.join(shipped_recipes())}) or a TOML file",
        )
        sp.add_argument("--encoder", default="resnet34", choices=sorted(ENCODERS))
        sp.add_argument(
            "--loss",
            choices=LOSSES,
            help="override the recipe's loss",
        )
        sp.add_argument(
            "--no-pretrained",
            action="store_true",
            help="random encoder init instead of ImageNet weights",
        )
        sp.add_argument("--device", default="auto")
        sp.add_argument(
            "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"]
        )
        sp.add_argument("--workers", type=int, default=1, help="DataLoader workers")
        sp.add_argument(
            "--seed",
            type=int,
            help=f"data order, crops and degradations (default: {seed_default})",
        )
        sp.add_argument("--threads", type=int, help="torch CPU threads")

    t = sub.add_parser("train", help="train (or --resume) a run")
    common(
        t,
        "a resumed run's own; with --init-weights that file's step count; else 0",
    )
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--checkpoint-minutes", type=float, default=10.0)
    t.add_argument(
        "--max-steps", type=int, help="stop (with a checkpoint) after N steps"
    )
    t.add_argument("--valid-limit", type=int, help="use at most N validation images")
    t.add_argument(
        "--valid-crop",
        type=int,
        default=192,
        help="side of the centre crop of each validation image (default 192)",
    )
    t.add_argument(
        "--init-weights",
        metavar="FILE",
        help="start a new run from this weights file (e.g. the shipped one) "
        "instead of random init; ignored when resuming",
    )
    t.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("export", help="write inference weights from a run")
    e.add_argument("run", help="run folder or .ckpt file")
    e.add_argument("--out", required=True, help="weights file (.safetensors)")
    e.add_argument("--name", help="model name stored in the file")
    e.add_argument("--fp32", action="store_true", help="store fp32 instead of fp16")
    e.add_argument(
        "--ema",
        action="store_true",
        help="export the run's moving average of the weights (recipe ema_decay)",
    )

    a = sub.add_parser(
        "average", help="write the weighted average of weights files (a model soup)"
    )
    a.add_argument("files", nargs="+", help="two or more weights files")
    a.add_argument("--out", required=True, help="weights file (.safetensors)")
    a.add_argument(
        "--shares",
        type=float,
        nargs="+",
        help="one weight per file, normalised to sum to 1 (default: equal)",
    )
    a.add_argument("--name", help="model name stored in the file")
    a.add_argument("--fp32", action="store_true", help="store fp32 instead of fp16")

    f = sub.add_parser("lr-find", help="LR range test: CSV (and PNG if matplotlib)")
    common(f, "0")
    f.add_argument(
        "--stage",
        type=int,
        default=0,
        help="position of the recipe stage to test, from 0",
    )
    f.add_argument("--steps", type=int, default=100)
    f.add_argument("--start-lr", type=float, default=1e-7)
    f.add_argument("--end-lr", type=float, default=10.0)
    return p


def _recipe(args: argparse.Namespace):  # noqa: ANN202
    recipe = load_recipe(args.recipe)
    if args.loss:
        recipe = dataclasses.replace(recipe, loss=args.loss)
    if args.no_pretrained:
        recipe = dataclasses.replace(recipe, pretrained=False)
    return recipe


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    trainer = None
    try:
        if args.command == "export":
            from sr_core.training.export import export_run

            try:
                path = export_run(
                    args.run, args.out, name=args.name, half=not args.fp32, ema=args.ema
                )
            except ValueError as exc:  # --ema of a run that kept no average
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"wrote {path}")
            return 0
        if args.command == "average":
            from sr_core.training.export import average_weights

            try:
                path = average_weights(
                    args.files,
                    args.out,
                    shares=args.shares,
                    name=args.name,
                    half=not args.fp32,
                )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"wrote {path}")
            return 0
        from sr_core.training.loop import RunSettings, Trainer

        recipe = _recipe(args)
        settings = RunSettings(
            train_dir=args.data,
            valid_dir=args.valid,
            out_dir=args.out,
            encoder=args.encoder,
            seed=args.seed,
            workers=args.workers,
            device=args.device,
            precision=args.precision,
            **(
                {
                    "checkpoint_minutes": args.checkpoint_minutes,
                    "max_steps": args.max_steps,
                    "valid_limit": args.valid_limit,
                    "valid_crop": args.valid_crop,
                    "progress": not args.no_progress,
                    "init_weights": args.init_weights,
                }
                if args.command == "train"
                else {}
            ),
        )
        if args.command == "lr-find":
            from sr_core.training.lr_find import lr_find

            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                print(
                    "error: lr-find runs in one process; start it without torchrun",
                    file=sys.stderr,
                )
                return 2
            lr_find(
                recipe, settings, args.stage, args.steps, args.start_lr, args.end_lr
            )
            return 0
        trainer = Trainer(recipe, settings, resume=args.resume)
        state = trainer.run()
        if not trainer.is_main:
            return 0
        if trainer.stopped or state.stage < len(recipe.stages):
            print(
                f"stopped at stage {state.stage} epoch {state.epoch} batch "
                f"{state.batch} ({state.steps} steps); continue with --resume"
            )
        else:
            print(f"finished: {state.steps} steps, {state.samples} samples")
        return 0
    except (
        RecipeError,
        DataError,
        PretrainedWeightsUnavailableError,
        FileExistsError,
        FileNotFoundError,
        WeightsError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted without a checkpoint", file=sys.stderr)
        return 130
    finally:
        if trainer is not None:
            trainer.close()


if __name__ == "__main__":
    sys.exit(main())
