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
