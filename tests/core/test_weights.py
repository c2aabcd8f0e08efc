"""Weights files: round trip, strict loading, every load error, default lookup."""

from __future__ import annotations

import pickle
import site
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sr_core.arch import UNetConfig, build_unet
from sr_core.errors import (
    CorruptWeightsError,
    WeightsMismatchError,
    WeightsNotFoundError,
)
from sr_core.weights import (
    WeightsInfo,
    build_model_from_weights,
    bundled_weights_dirs,
    default_weights_path,
    read_weights,
    save_weights,
)

CFG = UNetConfig(encoder="resnet18")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "m.safetensors"
    net = build_unet(CFG)
    info = WeightsInfo(
        arch=CFG, name="round-trip", created="2026-11-23", training={"steps": 12}
    )
    save_weights(path, net, info, half=False)
    return path, net, info


def test_round_trip_keeps_keys_shapes_values_and_metadata(saved):
    path, net, info = saved
    state, read_info = read_weights(path)
    assert read_info == info
    assert set(state) == set(net.state_dict())  # safetensors sorts keys
    rebuilt = build_model_from_weights(state, read_info)
    for (k, a), b in zip(
        net.state_dict().items(), rebuilt.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


def test_fp16_storage_loads_into_fp32_model(tmp_path):
    net = build_unet(CFG)
    path = save_weights(tmp_path / "h.safetensors", net, WeightsInfo(arch=CFG))
    state, info = read_weights(path)
    assert state["head.0.bias"].dtype == torch.float16
    model = build_model_from_weights(state, info)
    assert model.head[0].bias.dtype == torch.float32


def test_missing_tensor_names_what_is_missing(saved, tmp_path):
    path, _, info = saved
    state, _ = read_weights(path)
    del state["head.0.bias"]
    with pytest.raises(WeightsMismatchError, match="1 missing.*head.0.bias"):
        build_model_from_weights(state, info)


def test_extra_and_misshaped_tensors_are_reported(saved):
    path, _, info = saved
    state, _ = read_weights(path)
    state["extra.weight"] = torch.zeros(1)
    state["head.0.bias"] = torch.zeros(5)
    with pytest.raises(WeightsMismatchError, match="unexpected.*wrong shape"):
        build_model_from_weights(state, info)


def test_weights_for_another_architecture_are_rejected(saved):
    path, _, _ = saved
    state, _ = read_weights(path)
    with pytest.raises(WeightsMismatchError, match="resnet34"):
        build_model_from_weights(
            state, WeightsInfo(arch=UNetConfig(encoder="resnet34"))
        )


def test_truncated_file(saved, tmp_path):
    data = saved[0].read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptWeightsError, match="damaged or truncated"):
        read_weights(bad)


def test_empty_and_foreign_files(tmp_path):
    empty = tmp_path / "e.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CorruptWeightsError, match="empty"):
        read_weights(empty)
    text = tmp_path / "t.pth"
    text.write_text("definitely not weights, just some text")
    with pytest.raises(CorruptWeightsError, match="not a weights file"):
        read_weights(text)


def test_raw_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": {}}, protocol=2))
    with pytest.raises(CorruptWeightsError, match="safely"):
        read_weights(path)


def test_legacy_torch_file_with_python_objects_is_refused(tmp_path, capsys):
    path = tmp_path / "old.pth"
    obj = {"model": {"x": torch.zeros(1)}, "obj": _Boom()}
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CorruptWeightsError, match="safely"):
        read_weights(path)
    assert "must never run" not in capsys.readouterr().out


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_torch_checkpoint_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "obj.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "obj": _Boom()}, path)
    with pytest.raises(CorruptWeightsError, match="safely"):
        read_weights(path)


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"a": torch.zeros(2)}, str(path))
    with pytest.raises(CorruptWeightsError, match="not an Upscaler weights file"):
        read_weights(path)


def test_missing_file_says_how_to_get_weights(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="train and export"):
        read_weights(tmp_path / "nope.safetensors")


def test_default_path_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("UPSCALER_WEIGHTS", str(tmp_path / "x.safetensors"))
    assert default_weights_path() == tmp_path / "x.safetensors"


def test_default_path_uses_manifest(monkeypatch, tmp_path):
    monkeypatch.delenv("UPSCALER_WEIGHTS", raising=False)
    (tmp_path / "b.safetensors").write_bytes(b"x")
    (tmp_path / "a.safetensors").write_bytes(b"x")
    (tmp_path / "manifest.json").write_text('{"default": "b.safetensors"}')
    monkeypatch.setattr("sr_core.weights.bundled_weights_dirs", lambda: [tmp_path])
    assert default_weights_path() == tmp_path / "b.safetensors"


def test_weights_of_a_pip_user_install_are_searched(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(site, "USER_BASE", str(tmp_path / "user"))
    dirs = bundled_weights_dirs()
    shared = Path("share") / "upscaler" / "weights"
    assert dirs[-2:] == [tmp_path / "venv" / shared, tmp_path / "user" / shared]
    monkeypatch.setattr(site, "USER_BASE", None)  # python -s / no user site
    assert bundled_weights_dirs()[-1] == tmp_path / "venv" / shared


def test_no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("UPSCALER_WEIGHTS", raising=False)
    monkeypatch.setattr("sr_core.weights.bundled_weights_dirs", lambda: [tmp_path])
    with pytest.raises(WeightsNotFoundError, match="No trained weights found"):
        default_weights_path()


def test_plain_state_dict_checkpoint_is_read_with_weights_only(tmp_path: Path):
    net = build_unet(CFG)
    path = tmp_path / "plain.pth"
    torch.save(net.state_dict(), path)
    state, info = read_weights(path)
    assert info.arch.encoder == "resnet18"
    build_model_from_weights(state, info)


@pytest.mark.parametrize("lead", [b"\x80", b"PK"], ids=["pickle-byte", "zip-magic"])
def test_safetensors_whose_header_length_looks_like_another_format(tmp_path, lead):
    # A safetensors file starts with its header length (little-endian u64); with
    # some metadata sizes those bytes read as a pickle opcode or a zip magic.
    net = build_unet(CFG)
    path = tmp_path / "m.safetensors"
    save_weights(path, net, WeightsInfo(arch=CFG))
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header, data = raw[8 : 8 + size], raw[8 + size :]
    # Pad the JSON header with spaces (as safetensors itself does) to the first
    # length whose low bytes are ``lead``; tensor offsets count from its end.
    step = 256 ** len(lead)
    target = int.from_bytes(lead, "little")
    target += (size - target + step - 1) // step * step
    path.write_bytes(target.to_bytes(8, "little") + header.ljust(target) + data)
    assert path.read_bytes().startswith(lead)
    state, _ = read_weights(path)
    assert state.keys() == net.state_dict().keys()
