"""fastai's freeze(): the encoder trains only its BatchNorm layers."""

from __future__ import annotations

from torch import nn

from sr_core.arch import UNetConfig, build_unet
from sr_core.training.loop import layer_param_groups


def test_frozen_stage_keeps_batchnorm_trainable() -> None:
    model = build_unet(UNetConfig(encoder="resnet18"))
    groups = layer_param_groups(model, [1e-3, 1e-3, 1e-2], frozen=True, wd=1e-3)
    in_opt = {id(p) for g in groups for p in g["params"]}
    for name, mod in model.encoder.named_modules():
        for p in mod.parameters(recurse=False):
            bn = isinstance(mod, nn.BatchNorm2d)
            assert p.requires_grad == bn, name
            assert (id(p) in in_opt) == bn, name
    decoder = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    assert all(p.requires_grad and id(p) in in_opt for p in decoder)
    assert [g["max_lr"] for g in groups] == [1e-3, 1e-3, 1e-2]

    groups = layer_param_groups(model, [1e-5, 1e-4, 1e-3], frozen=False, wd=1e-3)
    assert all(p.requires_grad for p in model.parameters())
    n_opt = sum(len(g["params"]) for g in groups)
    assert n_opt == len(list(model.parameters()))
