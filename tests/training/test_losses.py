"""The pixel losses against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from sr_core.training.config import load_recipe
from sr_core.training.losses import build_loss
from tests.training.conftest import TINY_RECIPE

PRED = torch.tensor([0.0, 1.0, 3.0, -2.0]).reshape(1, 1, 2, 2).repeat(1, 3, 1, 1)
TARGET = torch.zeros(1, 3, 2, 2)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("l1", (0 + 1 + 3 + 2) / 4), ("mse", (0 + 1 + 9 + 4) / 4)],
)
def test_pixel_loss_value(name: str, expected: float) -> None:
    total, parts = build_loss(name)(PRED, TARGET)
    assert total.item() == pytest.approx(expected)
    assert parts["pixel"].item() == pytest.approx(expected)


def test_mse_gradient_grows_with_the_error() -> None:
    # Unlike L1 (gradient ±1/N whatever the size), squared error pulls hardest on
    # the largest errors, which is what PSNR weighs.
    pred = PRED.clone().requires_grad_(True)
    build_loss("mse")(pred, TARGET)[0].backward()
    n = PRED.numel()
    assert torch.allclose(pred.grad, 2 * PRED / n)


def test_recipe_accepts_mse(tmp_path) -> None:
    path = tmp_path / "mse.toml"
    path.write_text(TINY_RECIPE.replace('loss = "l1"', 'loss = "mse"'))
    assert load_recipe(str(path)).loss == "mse"


def _normalised(rgb01_diff: tuple[float, float, float]) -> torch.Tensor:
    """A 1×3×2×2 difference, given in [0, 1] RGB, in ImageNet-normalised units."""
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return torch.tensor(rgb01_diff).view(1, 3, 1, 1).expand(1, 3, 2, 2) / std


def test_luma_loss_value_by_hand() -> None:
    # A grey step of 0.1 in [0, 1]: luma moves by 0.1 × (65.481 + 128.553 + 24.966)
    # / 255 = 0.1 × 0.858824; in units of a normalised pixel (÷ mean std 0.226).
    diff = _normalised((0.1, 0.1, 0.1))
    total, parts = build_loss("mse_y")(diff, torch.zeros_like(diff))
    luma = (0.1 * 219.0 / 255 / ((0.229 + 0.224 + 0.225) / 3)) ** 2
    rgb = float(diff.pow(2).mean())
    assert parts["luma"].item() == pytest.approx(luma, rel=1e-5)
    assert parts["pixel"].item() == pytest.approx(rgb, rel=1e-5)
    assert total.item() == pytest.approx(luma + 0.25 * rgb, rel=1e-5)


def test_luma_loss_ignores_a_pure_colour_shift_in_its_luma_term() -> None:
    # R up and G down in luma's proportions leaves Y unchanged: only the RGB term,
    # at a quarter weight, is left to hold colour.
    diff = _normalised((128.553 / 255 * 0.1, -65.481 / 255 * 0.1, 0.0))
    total, parts = build_loss("mse_y")(diff, torch.zeros_like(diff))
    assert parts["luma"].item() == pytest.approx(0.0, abs=1e-9)
    assert total.item() == pytest.approx(0.25 * parts["pixel"].item(), rel=1e-5)


def test_recipe_accepts_mse_y(tmp_path) -> None:
    path = tmp_path / "mse_y.toml"
    path.write_text(TINY_RECIPE.replace('loss = "l1"', 'loss = "mse_y"'))
    assert load_recipe(str(path)).loss == "mse_y"
