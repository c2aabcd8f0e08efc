"""Training recipe: stages, degradations and run settings, read from TOML.

A recipe lists stages (crop size, batch size, epochs, learning rate, one-cycle
pct_start, frozen encoder or not) and the degradations that turn an HR crop into
the model's input.  Unknown keys are errors that name the key, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES_DIR = Path(__file__).parent / "recipes"
LOSSES = ("feature", "l1", "l1_fft", "mse", "mse_y")
_SLICE = re.compile(r"^slice\(\s*([^,\s)]+)\s*(?:,\s*([^,\s)]+)\s*)?\)$")


class RecipeError(ValueError):
    """A recipe file is missing, malformed, or names an unknown setting."""


@dataclass(frozen=True)
class Degradation:
    """How an HR crop becomes the model input (all draws are per sample).

    The crop is downscaled by a factor drawn uniformly from [scale_min, scale_max]
    (or, with probability ``integer_scale_prob``, one of the whole numbers in that
    range: 2×/3×/4× put the LR exactly on the HR pixel grid, as benchmarks and
    "2×/4×" users do; ``integer_scales`` picks which, repeats weighting them,
    like ``down_filters``) with one of ``down_filters`` (Pillow, antialiased),
    optionally blurred beforehand, JPEG-compressed with probability ``jpeg_prob``
    at a quality drawn from ``jpeg_quality``, given Gaussian noise with
    probability ``noise_prob``, then resized back to the crop size with
    ``up_filter`` (the filter inference uses, stored in the exported weights).
    """

    scale_min: float = 2.0
    scale_max: float = 4.0
    integer_scale_prob: float = 0.0
    integer_scales: tuple[int, ...] = ()  # empty: every whole number in range
    down_filters: tuple[str, ...] = ("bicubic",)
    up_filter: str = "bicubic"
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (60, 60)
    noise_prob: float = 0.0
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    blur_prob: float = 0.0
    blur_radius: tuple[float, float] = (0.2, 1.0)


@dataclass(frozen=True)
class Stage:
    """One fit_one_cycle call: fixed crop/batch size, its own optimiser."""

    name: str
    crop: int
    batch_size: int
    epochs: int
    lr: str | float
    pct_start: float = 0.3
    frozen: bool = False

    def group_lrs(self, n_groups: int = 3) -> list[float]:
        """Per-layer-group max LRs: fastai's ``lr_range`` for slice strings."""
        return parse_lr(self.lr, n_groups)


@dataclass(frozen=True)
class Recipe:
    """A whole training plan: stages run in order, one degradation, one loss.

    ``loss`` is ``feature`` (VGG16-bn perceptual, needs ImageNet weights),
    ``l1``, ``l1_fft``, ``mse`` or ``mse_y``; ``pretrained`` starts the encoder from
    ImageNet weights (and only then do ``frozen`` stages freeze anything).
    ``ema_decay`` > 0 also keeps an exponential moving average of the weights
    (e.g. 0.999), validated and exported beside the trained weights.
    """

    name: str
    stages: tuple[Stage, ...]
    degradation: Degradation = field(default_factory=Degradation)
    weight_decay: float = 1e-3
    loss: str = "feature"
    pretrained: bool = True
    ema_decay: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_lr(lr: str | float, n_groups: int = 3) -> list[float]:
    """Per-group max LRs, as fastai's ``lr_range`` spreads them.

    ``1e-3`` → the same for every group; ``"slice(b)"`` → [b/10]*(n-1) + [b];
    ``"slice(a, b)"`` → a geometric series from a to b over the groups.

    Raises:
        RecipeError: not a positive number or one of the slice forms.
    """
    if isinstance(lr, bool):
        raise RecipeError(f"lr {lr!r}: use a number, 'slice(b)' or 'slice(a, b)'")
    if isinstance(lr, (int, float)):
        if not lr > 0:
            raise RecipeError(f"lr {lr!r} must be positive")
        return [float(lr)] * n_groups
    m = _SLICE.match(str(lr).strip())
    if not m:
        raise RecipeError(f"lr {lr!r}: use a number, 'slice(b)' or 'slice(a, b)'")
    try:
        a = float(m.group(1))
        b = None if m.group(2) is None else float(m.group(2))
    except ValueError as exc:
        raise RecipeError(f"lr {lr!r}: {exc}") from exc
    if not a > 0 or (b is not None and not b > 0):
        raise RecipeError(f"lr {lr!r}: the slice bounds must be positive")
    if b is None:
        return [a / 10] * (n_groups - 1) + [a]
    if n_groups == 1:
        return [b]
    q = (b / a) ** (1 / (n_groups - 1))
    return [a * q**i for i in range(n_groups)]


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise RecipeError(
            f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}"
        )
    if cls is not Recipe:  # Recipe gets already-built stages and degradation
        nested = sorted(k for k, v in data.items() if isinstance(v, dict))
        if nested:
            raise RecipeError(f"{where}: {nested} must be plain values, not tables")
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise RecipeError(f"{where}: {message}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_range(v: object, kind: Any = _is_num) -> bool:
    return (
        isinstance(v, tuple)
        and len(v) == 2
        and all(kind(x) for x in v)
        and v[0] <= v[1]
    )


def _validate_stage(s: Stage, where: str) -> None:
    _check(isinstance(s.name, str) and bool(s.name), where, "name must be a string")
    _check(
        _is_int(s.crop) and s.crop >= 32 and s.crop % 32 == 0,
        where,
        f"crop must be a multiple of 32 (got {s.crop!r})",
    )
    _check(
        _is_int(s.batch_size) and s.batch_size >= 1,
        where,
        f"batch_size must be an integer ≥ 1 (got {s.batch_size!r})",
    )
    _check(
        _is_int(s.epochs) and s.epochs >= 1,
        where,
        f"epochs must be an integer ≥ 1 (got {s.epochs!r})",
    )
    _check(
        _is_num(s.pct_start) and 0 <= s.pct_start < 1,
        where,
        f"pct_start must be in [0, 1) (got {s.pct_start!r})",
    )
    _check(isinstance(s.frozen, bool), where, "frozen must be true or false")
    try:
        s.group_lrs()
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def _validate_degradation(d: Degradation, where: str) -> None:
    from sr_core.training.data import FILTERS  # data imports this module

    _check(
        _is_num(d.scale_min) and _is_num(d.scale_max) and d.scale_min >= 1,
        where,
        "scale_min and scale_max must be numbers ≥ 1",
    )
    _check(d.scale_min <= d.scale_max, where, "scale_min must be ≤ scale_max")
    _check(
        isinstance(d.integer_scales, tuple)
        and all(
            _is_int(f) and d.scale_min <= f <= d.scale_max for f in d.integer_scales
        ),
        where,
        "integer_scales must be a list of whole numbers in [scale_min, scale_max]",
    )
    _check(
        isinstance(d.down_filters, tuple) and len(d.down_filters) > 0,
        where,
        "down_filters must be a non-empty list of filter names",
    )
    for f in (*d.down_filters, d.up_filter):
        _check(
            f in FILTERS, where, f"unknown filter {f!r}; use one of {sorted(FILTERS)}"
        )
    for key in ("integer_scale_prob", "jpeg_prob", "noise_prob", "blur_prob"):
        v = getattr(d, key)
        _check(_is_num(v) and 0 <= v <= 1, where, f"{key} must be in [0, 1]")
    _check(
        _is_range(d.jpeg_quality, _is_int)
        and 1 <= d.jpeg_quality[0] <= 100
        and d.jpeg_quality[1] <= 100,
        where,
        "jpeg_quality must be [low, high] integers in 1..100",
    )
    for key in ("noise_sigma", "blur_radius"):
        v = getattr(d, key)
        _check(_is_range(v) and v[0] >= 0, where, f"{key} must be [low, high] ≥ 0")


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a parsed recipe.

    Raises:
        RecipeError: a missing, unknown (typo) or out-of-range key; the message
            names the key and where it is.
    """
    data = dict(data)
    stages_raw = data.pop("stages", None)
    if not stages_raw or not isinstance(stages_raw, list):
        raise RecipeError(f"{source}: needs at least one [[stages]] table")
    stages = []
    for i, raw in enumerate(stages_raw):
        where = f"{source} stage {i}"
        if not isinstance(raw, dict):
            raise RecipeError(f"{where}: must be a [[stages]] table")
        stage = _build(Stage, dict(raw), where)
        _validate_stage(stage, f"{where} ({stage.name})")
        stages.append(stage)
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise RecipeError(f"{source}: stage names must be unique (got {names})")
    degr_raw = data.pop("degradation", {})
    if not isinstance(degr_raw, dict):
        raise RecipeError(f"{source}: degradation must be a [degradation] table")
    degr = _build(Degradation, dict(degr_raw), f"{source} [degradation]")
    _validate_degradation(degr, f"{source} [degradation]")
    data.setdefault("name", Path(source).stem)
    recipe = _build(
        Recipe, {**data, "stages": tuple(stages), "degradation": degr}, source
    )
    if recipe.loss not in LOSSES:
        raise RecipeError(f"{source}: loss must be one of {list(LOSSES)}")
    _check(isinstance(recipe.pretrained, bool), source, "pretrained must be a boolean")
    _check(
        _is_num(recipe.weight_decay) and recipe.weight_decay >= 0,
        source,
        "weight_decay must be a number ≥ 0",
    )
    _check(
        _is_num(recipe.ema_decay) and 0 <= recipe.ema_decay < 1,
        source,
        "ema_decay must be a number in [0, 1) (0 turns the average off)",
    )
    return recipe


def shipped_recipes() -> list[str]:
    """Names of the recipes in ``recipes/``, for help texts and errors."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a shipped recipe by name (see ``shipped_recipes``) or a TOML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise RecipeError(
            f"Recipe {name_or_path!r} not found (shipped: {shipped_recipes()})"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc
    return recipe_from_dict(data, str(path))
