"""Tile geometry and stitching: coverage, exactness with a pointwise fake model."""

from __future__ import annotations

import numpy as np
import pytest

from sr_core.tiling import Stitcher, plan_axis, plan_tiles


@pytest.mark.parametrize(
    "length,tile,overlap",
    [
        (100, 128, 16),
        (1280, 512, 32),
        (1000, 256, 64),
        (333, 96, 8),
        (4096, 512, 32),
    ],
)
def test_axis_plan_covers_everything_with_enough_overlap(length, tile, overlap):
    windows = plan_axis(length, tile, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == length
    for (_a0, a1), (b0, _b1) in zip(windows, windows[1:], strict=False):
        assert a1 - b0 >= overlap  # consecutive windows overlap enough
    assert all(b - a <= tile for a, b in windows)


def test_fewest_tiles_are_used():
    assert len(plan_axis(1280, 512, 32)) == 3
    assert len(plan_axis(1024, 1024, 32)) == 1


def test_stitching_a_pointwise_function_is_exact():
    rng = np.random.default_rng(0)
    img = rng.random((150, 230, 3)).astype(np.float32)
    tiles = plan_tiles(150, 230, 64, 16)
    assert len(tiles) > 4
    st = Stitcher(150, 230, 3, tiles)
    for t in tiles:
        st.add(t, img[t.slices] ** 2)
    np.testing.assert_allclose(st.result(), img**2, rtol=1e-6, atol=1e-6)


def test_tile_must_exceed_twice_overlap():
    with pytest.raises(ValueError):
        plan_tiles(100, 100, 64, 32)
