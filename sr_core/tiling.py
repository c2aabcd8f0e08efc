"""Tile geometry and seamless stitching on numpy arrays (no torch, no devices).

Tiles overlap by ``overlap`` pixels; inside an overlap, the two tiles are
cross-faded with linear ramps, so no seam shows even though a U-Net's output
near a tile edge differs a little from its output with full context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A window [y0, y1) × [x0, x1) of the output image."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def plan_axis(
    length: int, tile: int, overlap: int, multiple: int = 32
) -> list[tuple[int, int]]:
    """Split ``[0, length)`` into the fewest windows of at most ``tile`` pixels
    that overlap by at least ``overlap``, evenly sized (rounded up to
    ``multiple`` where the image allows).
    """
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)
    size = min(tile, math.ceil(size / multiple) * multiple)
    starts = [round(i * (length - size) / (n - 1)) for i in range(n)]
    return [(s, s + size) for s in starts]


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering a ``height`` × ``width`` image."""
    if tile <= 2 * overlap:
        raise ValueError(f"tile {tile} must exceed twice the overlap {overlap}")
    rows = plan_axis(height, tile, overlap)
    cols = plan_axis(width, tile, overlap)
    return [Tile(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols]


def _ramp(n: int, lead: int, trail: int) -> np.ndarray:
    """1-D weights: rising over ``lead`` pixels, falling over ``trail`` pixels."""
    w = np.ones(n, dtype=np.float32)
    if lead:
        w[:lead] = (np.arange(lead, dtype=np.float32) + 0.5) / lead
    if trail:
        w[n - trail :] = np.minimum(
            w[n - trail :], (np.arange(trail, 0, -1, dtype=np.float32) - 0.5) / trail
        )
    return w


class Stitcher:
    """Accumulates weighted tiles into one (H, W, C) float32 image."""

    def __init__(self, height: int, width: int, channels: int, tiles: list[Tile]):
        self._acc = np.zeros((height, width, channels), dtype=np.float32)
        self._weight = np.zeros((height, width, 1), dtype=np.float32)
        self._tiles = tiles

    def _weights(self, t: Tile) -> np.ndarray:
        # Ramp only where a neighbouring tile overlaps this one.
        def overlaps(a0: int, a1: int, axis: str) -> tuple[int, int]:
            lead = trail = 0
            for o in self._tiles:
                same = (
                    (o.x0, o.x1) == (t.x0, t.x1)
                    if axis == "y"
                    else ((o.y0, o.y1) == (t.y0, t.y1))
                )
                if not same or o == t:
                    continue
                b0, b1 = (o.y0, o.y1) if axis == "y" else (o.x0, o.x1)
                if b0 < a0 < b1:
                    lead = max(lead, b1 - a0)
                if b0 < a1 < b1:
                    trail = max(trail, a1 - b0)
            return lead, trail

        wy = _ramp(t.y1 - t.y0, *overlaps(t.y0, t.y1, "y"))
        wx = _ramp(t.x1 - t.x0, *overlaps(t.x0, t.x1, "x"))
        return (wy[:, None] * wx[None, :])[..., None]

    def add(self, tile: Tile, pixels: np.ndarray) -> None:
        """Blend ``pixels`` (tile height, tile width, C) float32 into place."""
        w = self._weights(tile)
        ys, xs = tile.slices
        self._acc[ys, xs] += pixels * w
        self._weight[ys, xs] += w

    def result(self) -> np.ndarray:
        """The blended image, (H, W, C) float32."""
        return self._acc / np.maximum(self._weight, 1e-8)
