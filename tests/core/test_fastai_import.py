"""fastai v1 checkpoint import, checked against fastai 1.0.61's real key list.

The fixtures in ``data/`` were dumped from fastai's own ``unet_learner`` (see
``scripts/make_fastai_fixture.py``); fastai itself is not needed to run this.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sr_core.arch import UNetConfig, build_unet
from sr_core.errors import WeightsMismatchError
from sr_core.weights import (
    build_model_from_weights,
    fastai_to_native_keys,
    read_weights,
)

DATA = Path(__file__).parent / "data"
ENCODERS = ["resnet18", "resnet34"]


def _fixture(encoder: str) -> dict:
    return json.loads((DATA / f"fastai_unet_{encoder}_keys.json").read_text())


def _fake_fastai_state(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Random tensors with fastai's keys/shapes; BN statistics kept plausible."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


@pytest.mark.parametrize("encoder", ENCODERS)
def test_fixture_keys_map_onto_our_state_dict(encoder: str) -> None:
    fixture = _fixture(encoder)
    assert fixture["fastai_version"] == "1.0.61"
    assert fixture["checkpoint_top_level_keys"] == ["model", "opt"]
    fastai_state = {
        k: torch.empty(shape, device="meta")
        for k, shape in fixture["state_dict"].items()
    }
    native = fastai_to_native_keys(fastai_state)
    ours = build_unet(UNetConfig(encoder=encoder, icnr=False)).state_dict()
    assert list(native) == list(ours)  # same names, same order
    assert {k: tuple(v.shape) for k, v in native.items()} == {
        k: tuple(v.shape) for k, v in ours.items()
    }


# The lesson's own files (2019) predate torch 1.6's zip format.
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_fake_fastai_checkpoint_loads_strictly_and_matches_positional_copy(
    tmp_path: Path, zip_format: bool
) -> None:
    shapes = _fixture("resnet18")["state_dict"]
    fastai_state = _fake_fastai_state(shapes)
    opt = {
        "state": {},
        "param_groups": [
            {
                "lr": 1e-3,
                "betas": (0.9, 0.99),
                "eps": 1e-8,
                "weight_decay": 0,
                "amsgrad": False,
                "params": list(range(3)),
            }
        ],
    }
    path = tmp_path / "stage1.pth"
    torch.save(
        {"model": fastai_state, "opt": opt},
        path,
        _use_new_zipfile_serialization=zip_format,
    )

    state, info = read_weights(path)
    assert info.arch.encoder == "resnet18"
    assert not info.arch.blur_final_shuffle  # fastai 1.0.61 does not blur it
    model = build_model_from_weights(state, info).eval()

    reference = build_unet(UNetConfig(encoder="resnet18", icnr=False))
    ref_keys = list(reference.state_dict())
    assert len(ref_keys) == len(fastai_state)
    reference.load_state_dict(
        dict(zip(ref_keys, fastai_state.values(), strict=True)), strict=True
    )
    reference.eval()

    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        out, expected = model(x), reference(x)
    assert out.shape == (1, 3, 64, 64)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_unknown_fastai_key_is_rejected() -> None:
    # Top-level index 9 is fastai's parameter-free MergeLayer: nothing maps there.
    with pytest.raises(WeightsMismatchError, match="layers.9.weight"):
        fastai_to_native_keys({"layers.9.weight": torch.zeros(1)})
