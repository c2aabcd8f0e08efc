"""One-cycle schedule and LR slices against the formulas of spec §4.2 / §4.4."""

from __future__ import annotations

import math

import pytest

from sr_core.training.config import RecipeError, parse_lr
from sr_core.training.schedule import cos_anneal, one_cycle


@pytest.mark.parametrize(
    ("total", "pct"), [(2070, 0.9), (5540, 0.3), (2500, 0.25), (10, 0.3)]
)
def test_one_cycle_key_points(total: int, pct: float) -> None:
    top = 1e-2
    a1 = math.floor(total * pct)
    a2 = total - a1

    lr, beta = one_cycle(0, total, top, pct)
    assert lr == pytest.approx(top / 25) and beta == pytest.approx(0.95)

    lr, beta = one_cycle(a1, total, top, pct)
    assert lr == pytest.approx(top) and beta == pytest.approx(0.85)

    lr, beta = one_cycle(total - 1, total, top, pct)
    p = (a2 - 1) / a2
    assert lr == pytest.approx(cos_anneal(top, top / 2.5e5, p))
    assert beta == pytest.approx(cos_anneal(0.85, 0.95, p))
    assert lr > top / 2.5e5  # never quite reaches the end value


def test_one_cycle_matches_spec_table_stage_1a() -> None:
    # Spec §4.5: G2 LR 4e-4 -> 1e-2 -> about 6.2e-7 over 2070 batches, pct 0.9.
    assert one_cycle(0, 2070, 1e-2, 0.9)[0] == pytest.approx(4e-4)
    assert one_cycle(1863, 2070, 1e-2, 0.9)[0] == pytest.approx(1e-2)
    assert one_cycle(2069, 2070, 1e-2, 0.9)[0] == pytest.approx(6.2e-7, rel=0.01)


def test_one_cycle_is_monotonic_in_each_phase() -> None:
    total, pct = 100, 0.3
    lrs = [one_cycle(k, total, 1.0, pct)[0] for k in range(total)]
    assert lrs[:31] == sorted(lrs[:31])
    assert lrs[30:] == sorted(lrs[30:], reverse=True)


@pytest.mark.parametrize("step", [-1, 10])
def test_one_cycle_rejects_steps_outside_the_cycle(step: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        one_cycle(step, 10, 1e-3)


def test_parse_lr() -> None:
    assert parse_lr("slice(1e-5, 1e-3)") == pytest.approx([1e-5, 1e-4, 1e-3])
    assert parse_lr("slice(1e-6,1e-4)") == pytest.approx([1e-6, 1e-5, 1e-4])
    assert parse_lr("slice(1e-2)") == pytest.approx([1e-3, 1e-3, 1e-2])
    assert parse_lr(1e-3) == [1e-3, 1e-3, 1e-3]
    assert parse_lr(1) == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("bad", ["1e-3", "slice()", "slice(a, b)", -1.0, 0, True])
def test_parse_lr_rejects(bad: object) -> None:
    with pytest.raises(RecipeError, match="lr"):
        parse_lr(bad)  # type: ignore[arg-type]
