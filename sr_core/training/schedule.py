"""fastai v1 one-cycle schedule (spec §4.4), stepped once per training batch."""

from __future__ import annotations

import math


def cos_anneal(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct 0) to ``end`` (pct 1)."""
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def one_cycle(
    step: int,
    total: int,
    max_lr: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div: float = 25.0 * 1e4,
    moms: tuple[float, float] = (0.95, 0.85),
) -> tuple[float, float]:
    """LR and Adam β1 for batch ``step`` (0-based) of a ``total``-batch cycle.

    Warm-up covers batches 0..a1 with a1 = floor(total·pct_start) (LR max/div →
    max, β1 0.95 → 0.85); the remaining batches anneal LR max → max/final_div and
    β1 back to 0.95, the last batch stopping one step short of the end value.
    """
    if not 0 <= step < total:
        raise ValueError(f"step {step} outside a cycle of {total}")
    a1 = int(total * pct_start)
    a2 = total - a1
    if step <= a1 and a1 > 0:
        p = step / a1
        return (
            cos_anneal(max_lr / div_factor, max_lr, p),
            cos_anneal(moms[0], moms[1], p),
        )
    p = (step - a1) / a2
    return cos_anneal(max_lr, max_lr / final_div, p), cos_anneal(moms[1], moms[0], p)
