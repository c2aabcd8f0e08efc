"""``upscaler --self-test``: passes with working weights, fails with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_core import cli, selftest


def test_self_test_passes_with_tiny_weights(tiny_weights: Path, capsys) -> None:
    code = cli.main(["--self-test", "--weights", str(tiny_weights), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK
    assert out.startswith(selftest.SUCCESS_PREFIX)
    assert "32×32 to 64×64" in out


def test_self_test_without_weights_fails_with_the_reason(tmp_path, capsys) -> None:
    missing = tmp_path / "missing.safetensors"
    code = cli.main(["--self-test", "--weights", str(missing), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_FAILED
    assert "self-test FAILED" in err and "not found" in err


def test_the_test_card_is_found_from_source() -> None:
    assert any(p.is_file() for p in selftest.selftest_image_candidates())


def test_a_blank_result_fails(tiny_weights: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        selftest, "upscale", lambda px, *_a: np.zeros((64, 64, 3), np.uint8)
    )
    with pytest.raises(selftest.SelfTestError, match="blank"):
        selftest.run_self_test(tiny_weights)


def test_a_missing_test_card_fails(tiny_weights: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(
        selftest, "selftest_image_candidates", lambda: [tmp_path / "none.png"]
    )
    with pytest.raises(selftest.SelfTestError, match="not found"):
        selftest.run_self_test(tiny_weights)
