"""The training optimiser: fused AdamW that matches the multi-tensor one."""

from __future__ import annotations

import torch
from torch import nn

from sr_core.training.loop import build_optimizer


def _net_and_grads(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 3, 1))
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    return net


def _groups(net: nn.Module) -> list[dict]:
    return [{"params": list(net.parameters()), "lr": 1e-2, "weight_decay": 1e-3}]


def test_fused_on_cpu_and_same_update_as_multi_tensor():
    fused_net, ref_net = _net_and_grads(), _net_and_grads()
    fused = build_optimizer(_groups(fused_net), torch.device("cpu"), (0.9, 0.99))
    assert fused.param_groups[0]["fused"] is True
    ref = torch.optim.AdamW(_groups(ref_net), betas=(0.9, 0.99), eps=1e-8, foreach=True)
    for _ in range(3):
        fused.step()
        ref.step()
    for a, b in zip(fused_net.parameters(), ref_net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_resuming_a_multi_tensor_state_stays_fused_and_continues_it():
    # Checkpoints written before the switch hold a foreach optimiser's state.
    old_net = _net_and_grads()
    old = torch.optim.AdamW(_groups(old_net), betas=(0.9, 0.99), eps=1e-8, foreach=True)
    old.step()
    saved = old.state_dict()
    new_net = _net_and_grads()
    new_net.load_state_dict(old_net.state_dict())
    for p, q in zip(new_net.parameters(), old_net.parameters(), strict=True):
        p.grad = q.grad.clone()
    new = build_optimizer(
        _groups(new_net), torch.device("cpu"), (0.9, 0.99), state=saved
    )
    assert new.param_groups[0]["fused"] is True
    assert new.param_groups[0]["foreach"] is None
    old.step()
    new.step()
    for a, b in zip(new_net.parameters(), old_net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_resume_follows_an_edited_peak_lr_and_weight_decay():
    net = _net_and_grads()
    saved_groups = [{"params": list(net.parameters()), "lr": 0.0, "max_lr": 1e-2}]
    saved_groups[0]["weight_decay"] = 1e-3
    old = build_optimizer(saved_groups, torch.device("cpu"), (0.9, 0.99))
    old.step()
    edited = [{"params": list(net.parameters()), "lr": 0.0, "max_lr": 5e-3}]
    edited[0]["weight_decay"] = 0.0
    new = build_optimizer(
        edited, torch.device("cpu"), (0.9, 0.99), state=old.state_dict()
    )
    assert new.param_groups[0]["max_lr"] == 5e-3
    assert new.param_groups[0]["weight_decay"] == 0.0
    assert new.state[net[0].weight]["step"] == 1  # the moments came back
