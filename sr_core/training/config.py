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
_SLICE = re.compile(r"^slice\(\s*([^,\s)]+)\s*(?:,\s*([^,\s)]+)\s*)?\)$")


class RecipeError(ValueError):
    """A recipe file is missing, malformed, or names an unknown setting."""


@dataclass(frozen=True)
class Degradation:
    """How an HR crop becomes the model input (all draws are per sample).

    The crop is downscaled by a factor drawn uniformly from [scale_min, scale_max]
    with one of ``down_filters`` (Pillow, antialiased), optionally blurred
    beforehand, JPEG-compressed with probability ``jpeg_prob`` at a quality
    drawn from ``jpeg_quality``, given Gaussian noise with probability
    ``noise_prob``, then resized back to the crop size with ``up_filter`` (the
    filter inference uses, stored in the exported weights).
    """

    scale_min: float = 2.0
    scale_max: float = 4.0
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
    name: str
    stages: tuple[Stage, ...]
    degradation: Degradation = field(default_factory=Degradation)
    weight_decay: float = 1e-3
    loss: str = "feature"
    pretrained: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_lr(lr: str | float, n_groups: int = 3) -> list[float]:
    """``1e-3`` → same for all; ``slice(b)`` → [b/10]*(n-1)+[b];
    ``slice(a, b)`` → geometric series from a to b over the groups."""
    if isinstance(lr, (int, float)):
        return [float(lr)] * n_groups
    m = _SLICE.match(str(lr).strip())
    if not m:
        raise RecipeError(f"lr {lr!r}: use a number, 'slice(b)' or 'slice(a, b)'")
    a, b = m.group(1), m.group(2)
    if b is None:
        top = float(a)
        return [top / 10] * (n_groups - 1) + [top]
    lo, hi = float(a), float(b)
    q = (hi / lo) ** (1 / (n_groups - 1))
    return [lo * q**i for i in range(n_groups)]


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise RecipeError(
            f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}"
        )
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a parsed recipe; raises ``RecipeError`` naming bad keys."""
    data = dict(data)
    stages_raw = data.pop("stages", None)
    if not stages_raw:
        raise RecipeError(f"{source}: needs at least one [[stages]] table")
    stages = tuple(
        _build(Stage, dict(s), f"{source} stage {i}") for i, s in enumerate(stages_raw)
    )
    for s in stages:
        s.group_lrs()
        if s.crop % 32 or s.crop < 32:
            raise RecipeError(f"{source} stage {s.name}: crop must be a multiple of 32")
    degr = _build(
        Degradation, dict(data.pop("degradation", {})), f"{source} degradation"
    )
    data.setdefault("name", Path(source).stem)
    recipe = _build(Recipe, {**data, "stages": stages, "degradation": degr}, source)
    if recipe.loss not in ("feature", "l1", "l1_fft"):
        raise RecipeError(f"{source}: loss must be feature, l1 or l1_fft")
    return recipe


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a shipped recipe by name (``cpu``, ``fastai``) or a TOML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        shipped = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
        raise RecipeError(f"Recipe {name_or_path!r} not found (shipped: {shipped})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc
    return recipe_from_dict(data, str(path))
