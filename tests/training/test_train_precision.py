"""Training picks its autocast dtype and memory layout from the device."""

from __future__ import annotations

import pytest
import torch

from sr_core.training import loop
from sr_core.training.loop import autocast_dtype, training_memory_format

CPU = torch.device("cpu")


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_auto_precision_on_cpu_follows_bf16_kernels(monkeypatch, fast_bf16):
    monkeypatch.setattr(loop, "cpu_supports_bf16", lambda: fast_bf16)
    want = torch.bfloat16 if fast_bf16 else None
    assert autocast_dtype(CPU, "auto") is want
    assert autocast_dtype(CPU, "fp32") is None
    assert autocast_dtype(CPU, "bf16") is torch.bfloat16


def test_fp32_cpu_trains_contiguous_and_mixed_precision_channels_last():
    assert training_memory_format(CPU, None) == torch.contiguous_format
    assert training_memory_format(CPU, torch.bfloat16) == torch.channels_last
    cuda = torch.device("cuda")
    assert training_memory_format(cuda, torch.float16) == torch.channels_last
    assert training_memory_format(cuda, None) == torch.channels_last
