"""Size policy, channel layouts, progress/cancel, tiling equivalence, OOM fallback."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sr_core import (
    Progress,
    Target,
    UpscaleOptions,
    iter_upscale,
    load_model,
    output_size,
    upscale,
)
from sr_core.errors import DeviceMemoryError, UnsupportedImageError
from sr_core.weights import WeightsInfo


@dataclass
class FakeModel:
    """Pointwise fake: tiled and untiled output must match exactly."""

    device: str = "cpu"
    precision: str = "fp32"
    info: WeightsInfo = WeightsInfo(resize_filter="nearest")
    oom_above: int | None = None
    oom_error: type[BaseException] = torch.OutOfMemoryError
    calls: int = 0

    def run_tile(self, tile: np.ndarray) -> np.ndarray:
        self.calls += 1
        if (
            self.oom_above is not None
            and tile.shape[0] * tile.shape[1] > self.oom_above
        ):
            if self.oom_error is RuntimeError:  # how the CPU allocator words it
                raise RuntimeError(
                    "[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: "
                    "can't allocate memory: you tried to allocate 68719476736 bytes."
                )
            raise self.oom_error("fake OOM")
        return 1.0 - tile.astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def tiny_model(tiny_weights):
    return load_model(tiny_weights, device="cpu", precision="fp32")


def photo(h: int = 40, w: int = 60) -> np.ndarray:
    """A smooth synthetic photo-like image (gradients plus a few edges)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 7.0)
    g = 128 + 100 * np.cos(y / 5.0)
    b = np.where((x // 15 + y // 15) % 2 == 0, 200, 60)
    return np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "target,expected",
    [
        (Target.longest(1024), (1024, 768)),
        (Target.scale(2), (800, 600)),
        (Target.scale(3), (1200, 900)),
        (Target.exact(300, 500), (300, 500)),
    ],
)
def test_output_size_keeps_aspect_unless_exact(target, expected):
    assert output_size((400, 300), target) == expected


def test_auto_size_follows_available_memory(monkeypatch):
    monkeypatch.setattr("sr_core.inference.available_memory", lambda d: 32e9)
    assert output_size((400, 300), Target.auto()) == (1280, 960)
    monkeypatch.setattr("sr_core.inference.available_memory", lambda d: 4e9)
    assert output_size((400, 300), Target.auto()) == (1024, 768)


def test_huge_output_is_refused_with_advice():
    with pytest.raises(UnsupportedImageError, match="smaller size"):
        output_size((4000, 3000), Target.scale(8))


@dataclass
class IdentityModel:
    """Returns its (resized) input: what the resize and alpha steps do shows."""

    device: str = "cpu"
    precision: str = "fp32"
    info: WeightsInfo = WeightsInfo(resize_filter="bicubic")

    def run_tile(self, tile: np.ndarray) -> np.ndarray:
        return tile.astype(np.float32) / 255.0


def test_clear_pixels_colour_does_not_fringe_edges():
    """A white disc with soft edges on clear black: upscaled edges stay white."""
    y, x = np.mgrid[0:40, 0:40].astype(np.float32)
    alpha = np.clip((14.0 - np.hypot(x - 20, y - 20)) * 128, 0, 255).astype(np.uint8)
    white = np.full((40, 40, 3), 255, np.uint8)
    white[alpha == 0] = 0  # what most editors store under transparent pixels
    rgba = np.dstack([white, alpha])
    out = upscale(rgba, IdentityModel(), UpscaleOptions(Target.scale(3)))
    visible = out[..., 3] >= 16
    assert visible.sum() > 1000
    assert out[..., :3][visible].min() >= 250
    rgba[..., 3] = 255  # fully opaque: colours pass through untouched
    out = upscale(rgba, IdentityModel(), UpscaleOptions(Target.scale(1)))
    np.testing.assert_array_equal(out, rgba)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "longest"},
        {"kind": "scale", "value": -1},
        {"kind": "exact", "width": 5},
        {"kind": "huge"},
    ],
)
def test_target_validates_itself(bad):
    with pytest.raises(ValueError):
        Target(**bad)


def test_options_validate_themselves():
    with pytest.raises(ValueError):
        UpscaleOptions(tile=100)
    with pytest.raises(ValueError):
        UpscaleOptions(tile=64, overlap=32)


def test_tiled_equals_untiled_exactly_for_pointwise_model():
    img = photo(90, 130)
    opts_tiled = UpscaleOptions(Target.scale(2), tile=96, overlap=16)
    tiled = upscale(img, FakeModel(), opts_tiled)
    whole = upscale(img, FakeModel(), UpscaleOptions(Target.scale(2), tile=512))
    assert tiled.shape == (180, 260, 3)
    np.testing.assert_array_equal(tiled, whole)


def test_progress_is_reported_per_tile_then_result_returned():
    gen = iter_upscale(
        photo(), FakeModel(), UpscaleOptions(Target.scale(4), tile=64, overlap=8)
    )
    steps = []
    with pytest.raises(StopIteration) as stop:
        while True:
            steps.append(next(gen))
    assert steps[0] == Progress(0, steps[0].total)
    assert [s.done for s in steps] == list(range(steps[0].total + 1))
    assert stop.value.value.shape == (160, 240, 3)


def test_closing_the_generator_cancels_after_at_most_one_tile():
    model = FakeModel()
    gen = iter_upscale(
        photo(), model, UpscaleOptions(Target.scale(4), tile=64, overlap=8)
    )
    next(gen)
    next(gen)
    gen.close()
    assert model.calls == 1


@dataclass
class RampModel(FakeModel):
    """Output depends on the column, so each view's mapping back shows."""

    def run_tile(self, tile: np.ndarray) -> np.ndarray:
        self.calls += 1
        w = tile.shape[1]
        ramp = (np.arange(w, dtype=np.float32) + 1) / w
        return tile.astype(np.float32) / 255.0 * ramp[None, :, None]


def test_ensemble_averages_the_flipped_pass_mapped_back():
    img = photo(32, 48)
    out = upscale(img, RampModel(), UpscaleOptions(Target.scale(1), ensemble=2))
    # identity pass: ramp (x+1)/w; flipped pass mapped back: (w-x)/w.
    w = img.shape[1]
    mean_ramp = ((np.arange(w) + 1) / w + (w - np.arange(w)) / w) / 2
    want = img.astype(np.float64) / 255.0 * mean_ramp[None, :, None]
    np.testing.assert_allclose(out, want * 255.0, atol=0.51)  # rounding only


def test_eight_pass_ensemble_makes_the_real_net_rotation_equivariant(tiny_model):
    img = photo(64, 96)  # multiples of 32: no padding to break the symmetry
    turned = np.ascontiguousarray(np.rot90(img))

    def run(pixels, passes):
        opts = UpscaleOptions(Target.scale(1), tile=512, ensemble=passes)
        return upscale(pixels, tiny_model, opts).astype(int)

    plain_gap = np.abs(run(turned, 1) - np.rot90(run(img, 1))).max()
    ensemble_gap = np.abs(run(turned, 8) - np.rot90(run(img, 8))).max()
    assert plain_gap > 3  # the net alone is not symmetric...
    assert ensemble_gap <= 1  # ...its 8-view mean is (up to rounding)


def test_ensemble_reports_every_pass_and_cancels_within_one():
    opts = UpscaleOptions(Target.scale(4), tile=64, overlap=8, ensemble=4)
    tiles = next(iter_upscale(photo(), FakeModel(), UpscaleOptions(opts.target, 64, 8)))
    steps = []
    gen = iter_upscale(photo(), FakeModel(), opts)
    with pytest.raises(StopIteration):
        while True:
            steps.append(next(gen))
    assert steps[0] == Progress(0, tiles.total * 4)
    assert [s.done for s in steps] == list(range(tiles.total * 4 + 1))
    model = FakeModel()
    gen = iter_upscale(photo(), model, opts)
    next(gen)
    next(gen)
    gen.close()
    assert model.calls == 1


@pytest.mark.parametrize("passes", [0, 3, 16])
def test_ensemble_size_is_checked(passes):
    with pytest.raises(ValueError, match="ensemble"):
        UpscaleOptions(ensemble=passes)


def test_oom_halves_the_tile_and_finishes():
    model = FakeModel(oom_above=64 * 64)
    out = upscale(photo(), model, UpscaleOptions(Target.scale(4), tile=256, overlap=8))
    np.testing.assert_array_equal(
        out,
        upscale(
            photo(), FakeModel(), UpscaleOptions(Target.scale(4), tile=64, overlap=8)
        ),
    )


@pytest.mark.parametrize("error", [RuntimeError, MemoryError])
def test_cpu_allocation_failure_halves_the_tile_too(error):
    model = FakeModel(oom_above=64 * 64, oom_error=error)
    out = upscale(photo(), model, UpscaleOptions(Target.scale(4), tile=256, overlap=8))
    np.testing.assert_array_equal(
        out,
        upscale(
            photo(), FakeModel(), UpscaleOptions(Target.scale(4), tile=64, overlap=8)
        ),
    )


def test_other_runtime_errors_are_not_taken_for_oom():
    class BrokenModel(FakeModel):
        def run_tile(self, tile):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        upscale(photo(), BrokenModel(), UpscaleOptions(Target.scale(2), tile=64))


def test_full_size_buffer_failure_is_a_device_memory_error(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("sr_core.inference.Stitcher", no_memory)
    with pytest.raises(DeviceMemoryError, match="240x160 output on cpu"):
        upscale(photo(), FakeModel(), UpscaleOptions(Target.scale(4), tile=64))


def test_oom_at_smallest_tile_raises_device_memory_error():
    advice = "smaller output size, close other programs"
    with pytest.raises(DeviceMemoryError, match=advice):
        upscale(
            photo(),
            FakeModel(oom_above=10, oom_error=RuntimeError),
            UpscaleOptions(Target.scale(4), tile=64, overlap=8),
        )


def test_grey_and_rgba_keep_their_layout(tiny_model):
    grey = photo()[..., 0]
    out = upscale(grey, tiny_model, UpscaleOptions(Target.scale(2)))
    assert out.shape == (80, 120) and out.dtype == np.uint8
    alpha = np.full((40, 60), 255, np.uint8)
    alpha[:, :30] = 0
    rgba = np.dstack([photo(), alpha])
    out = upscale(rgba, tiny_model, UpscaleOptions(Target.exact(90, 70)))
    assert out.shape == (70, 90, 4)
    assert out[:, :40, 3].max() == 0 and out[:, 50:, 3].min() == 255


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros(5, np.uint8),
    ],
)
def test_bad_arrays_are_refused(bad):
    with pytest.raises(UnsupportedImageError):
        upscale(bad, FakeModel(), UpscaleOptions(Target.scale(2)))


def test_real_net_tiling_is_close_to_untiled(tiny_model):
    img = photo(64, 96)
    opts = UpscaleOptions(Target.scale(4), tile=128, overlap=32)
    tiled = upscale(img, tiny_model, opts).astype(np.float64)
    whole = upscale(img, tiny_model, UpscaleOptions(Target.scale(4), tile=512))
    mse = ((tiled - whole) ** 2).mean()
    psnr = 10 * np.log10(255**2 / max(mse, 1e-10))
    # A random net has no learnt locality, so this bound is loose; the measured
    # figure for trained weights is in benchmarks/speed.py and the model card.
    assert psnr > 20


def test_bf16_output_is_close_to_fp32(tiny_weights):
    from sr_core.model import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("CPU has no fast bf16")
    img = photo(32, 48)
    a = upscale(
        img, load_model(tiny_weights, "cpu", "fp32"), UpscaleOptions(Target.scale(2))
    )
    b = upscale(
        img, load_model(tiny_weights, "cpu", "bf16"), UpscaleOptions(Target.scale(2))
    )
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    assert 10 * np.log10(255**2 / max(mse, 1e-10)) > 30


def test_folding_weight_norm_and_bn_is_exact(tiny_weights):
    from sr_core.model import fold_for_inference
    from sr_core.weights import build_model_from_weights, read_weights

    state, info = read_weights(tiny_weights)
    ref = build_model_from_weights(state, info).eval()
    folded = fold_for_inference(build_model_from_weights(state, info))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), ref(x), rtol=1e-4, atol=1e-4)


def test_unknown_device_is_a_clear_error(tiny_weights):
    with pytest.raises(ValueError, match="device"):
        load_model(tiny_weights, device="tpu")


def test_a_gpu_number_beyond_the_machine_is_a_clear_error(monkeypatch):
    from sr_core.model import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="no cuda:7: this machine has 1 CUDA GPU"):
        resolve_device("cuda:7")


def test_core_never_imports_qt():
    import subprocess

    code = (
        "import sys, sr_core, sr_core.training.loop, sr_core.weights; "
        "bad = [m for m in sys.modules if m.startswith(('PyQt5', 'PyQt6', 'PySide'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
