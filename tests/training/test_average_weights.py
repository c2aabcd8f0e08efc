"""``average``: the weighted mean of weights files of one architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_core.arch import UNetConfig, build_unet
from sr_core.errors import WeightsMismatchError
from sr_core.training.__main__ import main
from sr_core.training.export import average_weights
from sr_core.weights import (
    WeightsInfo,
    build_model_from_weights,
    read_weights,
    save_weights,
)


def _weights(path: Path, seed: int, encoder: str = "resnet18") -> Path:
    torch.manual_seed(seed)
    model = build_unet(UNetConfig(encoder=encoder))
    # Distinct BatchNorm statistics too, so buffers are checked as well.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(seed)
    info = WeightsInfo(
        arch=model.config, name=f"model-{seed}", training={"steps": seed * 100}
    )
    return save_weights(path, model, info, half=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("soup")
    return _weights(folder / "a.safetensors", 1), _weights(folder / "b.safetensors", 2)


def test_weighted_mean_of_every_float_tensor(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    out = average_weights(
        list(pair), tmp_path / "mix.safetensors", shares=[3, 1], half=False
    )
    (a, _), (b, _) = read_weights(pair[0]), read_weights(pair[1])
    mixed, info = read_weights(out)
    assert mixed.keys() == a.keys()
    checked = 0
    for key, value in mixed.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * a[key] + 0.25 * b[key], msg=key)
            checked += 1
        else:  # BatchNorm's step counter is the first file's
            assert torch.equal(value, a[key]), key
    assert checked > 100
    assert any(k.endswith("running_var") for k in mixed)
    assert info.name == "model-1-avg"
    assert info.training["steps"] == 100
    assert info.training["averaged_from"] == [
        {"file": "a.safetensors", "name": "model-1", "share": 0.75},
        {"file": "b.safetensors", "name": "model-2", "share": 0.25},
    ]
    build_model_from_weights(mixed, info)  # loads strictly


def test_cli_equal_shares_fp16(
    tmp_path: Path, pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "half.safetensors"
    argv = ["average", str(pair[0]), str(pair[1]), "--out", str(out)]
    assert main([*argv, "--name", "soup"]) == 0
    assert str(out) in capsys.readouterr().out
    (a, _), (b, _) = read_weights(pair[0]), read_weights(pair[1])
    mixed, info = read_weights(out)
    key = "head.0.bias"
    assert mixed[key].dtype == torch.float16
    torch.testing.assert_close(
        mixed[key].float(), (a[key] + b[key]) / 2, atol=1e-3, rtol=1e-3
    )
    assert info.name == "soup"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shares", "1"], "1 shares given for 2 files"),
        (["--shares", "1", "-1"], "non-negative"),
        (["--shares", "0", "0"], "non-negative"),
    ],
)
def test_cli_rejects_bad_shares(
    tmp_path: Path,
    pair: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    out = tmp_path / "never.safetensors"
    assert main(["average", *map(str, pair), "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_needs_two_files(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    out = tmp_path / "never.safetensors"
    assert main(["average", str(pair[0]), "--out", str(out)]) == 2
    assert not out.exists()


def test_refuses_other_architectures(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    other = _weights(tmp_path / "r34.safetensors", 3, encoder="resnet34")
    out = tmp_path / "never.safetensors"
    with pytest.raises(WeightsMismatchError, match="different architecture"):
        average_weights([pair[0], other], out)
    assert main(["average", str(pair[0]), str(other), "--out", str(out)]) == 2
    assert not out.exists()
