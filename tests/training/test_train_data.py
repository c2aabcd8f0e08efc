"""Degradation pipeline, sampler and image folder scanning."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sr_core.training.config import Degradation, load_recipe
from sr_core.training.data import (
    FILTERS,
    DataError,
    EpochSampler,
    PairDataset,
    _draw_scale,
    degrade,
    scan_images,
)

HEAVY = Degradation(
    scale_min=2.0,
    scale_max=4.0,
    down_filters=tuple(FILTERS),
    jpeg_prob=0.5,
    jpeg_quality=(30, 90),
    noise_prob=0.5,
    blur_prob=0.5,
)


@pytest.mark.parametrize("crop", [32, 64])
@pytest.mark.parametrize("train", [True, False])
def test_pairs_have_the_crop_size(train_dir: Path, crop: int, train: bool) -> None:
    ds = PairDataset(scan_images(train_dir).paths, crop, HEAVY, train=train, seed=3)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (3, crop, crop)
        assert x.dtype == y.dtype == torch.float32
        assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_degrade_keeps_size_for_every_filter() -> None:
    hr = Image.new("RGB", (37, 45), (120, 30, 200))
    for name in FILTERS:
        d = dataclasses.replace(HEAVY, down_filters=(name,), up_filter=name)
        rng = np.random.default_rng(0)
        for _ in range(5):
            assert degrade(hr, d, rng).size == (37, 45)


def _only_resize(scale: int) -> Degradation:
    return Degradation(
        integer_scale_prob=1.0,
        integer_scales=(scale,),
        down_filters=("bicubic",),
        up_filter="bicubic",
        jpeg_prob=0.0,
        noise_prob=0.0,
        blur_prob=0.0,
    )


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degrade_resizes_by_exactly_the_scale(scale: int) -> None:
    # The benchmark protocol: HR cropped to a multiple of the scale, down by exactly
    # `scale`, back up by exactly `scale`. Away from the crop's right and bottom
    # edges (which the two paths pad differently) the training input must match it.
    # 256 is no multiple of 3: an LR of round(256 / 3) = 85 px was an x3.01 resize,
    # about 0.8 px off at x = 200.
    rng = np.random.default_rng(5)
    hr = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    whole = 256 // scale * scale
    lr = hr.crop((0, 0, whole, whole)).resize((whole // scale,) * 2, Image.BICUBIC)
    expected = np.asarray(lr.resize((whole, whole), Image.BICUBIC), dtype=int)
    got = np.asarray(degrade(hr, _only_resize(scale), rng), dtype=int)
    assert got.shape == (256, 256, 3)
    inner = whole - 8 * scale
    assert np.abs(got[:inner, :inner] - expected[:inner, :inner]).max() <= 1


def test_pairs_deterministic_per_seed_epoch_index(train_dir: Path) -> None:
    paths = scan_images(train_dir).paths

    def item(seed: int, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        ds = PairDataset(paths, 32, HEAVY, train=True, seed=seed)
        ds.set_epoch(epoch)
        return ds[index]

    a = item(1, 0, 2)
    b = item(1, 0, 2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for other in (item(1, 1, 2), item(2, 0, 2)):
        assert not torch.equal(a[0], other[0])
    assert not torch.equal(item(1, 0, 2)[1], item(1, 1, 2)[1])  # new crop per epoch


def test_validation_pairs_ignore_the_epoch(train_dir: Path) -> None:
    ds = PairDataset(scan_images(train_dir).paths, 64, HEAVY, train=False, seed=0)
    x0, y0 = ds[0]
    ds.set_epoch(5)
    x5, y5 = ds[0]
    assert torch.equal(x0, x5) and torch.equal(y0, y5)


def test_shipped_recipes_degrade_to_size(train_dir: Path) -> None:
    for name in ("cpu", "cpu-refine", "cpu-refine-mse", "fastai"):
        d = load_recipe(name).degradation
        ds = PairDataset(scan_images(train_dir).paths, 32, d, train=True)
        assert ds[0][0].shape == (3, 32, 32)


def test_sampler_shards_and_resumes() -> None:
    full = list(EpochSampler(10, seed=4))
    assert sorted(full) == list(range(10))
    s = EpochSampler(10, seed=4)
    s.set_epoch(0, start=3)
    assert list(s) == full[3:] and len(s) == 7
    s.set_epoch(1)
    assert list(s) != full

    ranks = [EpochSampler(11, seed=4, rank=r, world=2) for r in range(2)]
    parts = [list(r) for r in ranks]
    assert len(parts[0]) == len(parts[1]) == 6  # padded to equal counts
    assert set(parts[0]) | set(parts[1]) == set(range(11))


def test_scan_skips_and_reports_bad_files(tmp_path: Path, make_image_dir: Any) -> None:
    folder = make_image_dir(tmp_path / "imgs", 2)
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "truncated.png").write_bytes((folder / "img0.png").read_bytes()[:200])
    Image.new("RGB", (10, 10)).save(folder / "tiny.png")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    found = scan_images(folder)
    assert [p.name for p in found.paths] == ["img0.png", "img1.png"]
    skipped = {p.name: why for p, why in found.skipped}
    assert set(skipped) == {"broken.png", "truncated.png", "tiny.png"}
    assert "too small" in skipped["tiny.png"]


def test_scan_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        scan_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No usable images"):
        scan_images(tmp_path / "empty")


def test_integer_scales_are_whole_numbers_in_the_range() -> None:
    d = Degradation(scale_min=1.5, scale_max=4.2, integer_scale_prob=1.0)
    rng = np.random.default_rng(0)
    assert {_draw_scale(d, rng) for _ in range(200)} == {2.0, 3.0, 4.0}


def test_integer_scale_mix_and_fallback() -> None:
    rng = np.random.default_rng(1)
    mixed = [_draw_scale(Degradation(integer_scale_prob=0.5), rng) for _ in range(400)]
    whole = sum(s in (2.0, 3.0, 4.0) for s in mixed)
    assert 150 < whole < 250  # about half, the rest uniform (never exactly whole)
    # No whole number in [2.2, 2.8]: always uniform in the range.
    d = Degradation(scale_min=2.2, scale_max=2.8, integer_scale_prob=1.0)
    draws = [_draw_scale(d, rng) for _ in range(50)]
    assert all(2.2 <= s <= 2.8 for s in draws) and len(set(draws)) == 50


def test_integer_scales_repeats_weight_the_whole_number_draws() -> None:
    d = Degradation(integer_scale_prob=1.0, integer_scales=(2, 4, 4, 4))
    rng = np.random.default_rng(3)
    draws = [_draw_scale(d, rng) for _ in range(800)]
    assert set(draws) == {2.0, 4.0}  # 3 is left out
    assert 0.68 < draws.count(4.0) / len(draws) < 0.82  # about 3 in 4


def test_integer_scale_prob_zero_keeps_the_old_draws() -> None:
    # Recipes without the option must see exactly the samples they saw before it.
    d = Degradation(scale_min=2.0, scale_max=4.0)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert [_draw_scale(d, a) for _ in range(5)] == [
        float(b.uniform(2.0, 4.0)) for _ in range(5)
    ]
