"""ResNet encoders cut as fastai's ``create_body(arch, cut=-2)`` cuts them.

The encoder is an ``nn.Sequential`` of the torchvision ResNet's children without
``avgpool`` and ``fc``; its keys therefore match torchvision checkpoints.  For a
3x128x128 input and resnet34 the children give::

    idx module   channels scale         idx module  channels scale
    0   conv1    64       1/2           4   layer1  64       1/4
    1   bn1      64       1/2           5   layer2  128      1/8
    2   relu     64       1/2  (skip)   6   layer3  256      1/16 (skip)
    3   maxpool  64       1/4           7   layer4  512      1/32

Skip points are the last module before each downsampling: ``[2, 4, 5, 6]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn
from torchvision import models

log = logging.getLogger(__name__)

ENCODERS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "resnet18": (models.resnet18, "ResNet18_Weights"),
    "resnet34": (models.resnet34, "ResNet34_Weights"),
    "resnet50": (models.resnet50, "ResNet50_Weights"),
}


class PretrainedWeightsUnavailableError(RuntimeError):
    """ImageNet weights for an encoder or loss network could not be obtained."""


def load_torchvision_model(
    factory: Callable[..., nn.Module], weights_enum: str, pretrained: bool
) -> nn.Module:
    """Build a torchvision model, with its IMAGENET1K_V1 weights if ``pretrained``.

    Raises:
        PretrainedWeightsUnavailableError: the weights are neither cached nor
            downloadable (e.g. no internet).
    """
    if not pretrained:
        return factory(weights=None)
    weights = getattr(models, weights_enum).IMAGENET1K_V1
    try:
        return factory(weights=weights)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise PretrainedWeightsUnavailableError(
            f"Could not get the ImageNet weights {weights_enum}.IMAGENET1K_V1 "
            f"({weights.url}): {exc}. Connect to the internet once so torchvision can "
            f"cache them (in {torch.hub.get_dir()}), or train without them "
            "(--no-pretrained)."
        ) from exc


def build_encoder(name: str, pretrained: bool = False) -> nn.Sequential:
    """Return the ResNet body (children[:-2]) as an ``nn.Sequential``.

    Args:
        name: one of ``ENCODERS``.
        pretrained: load torchvision's ImageNet weights.

    Raises:
        ValueError: unknown encoder name.
        PretrainedWeightsUnavailableError: ``pretrained`` but weights unreachable.
    """
    if name not in ENCODERS:
        raise ValueError(f"Unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    factory, weights_enum = ENCODERS[name]
    net = load_torchvision_model(factory, weights_enum, pretrained)
    return nn.Sequential(*list(net.children())[:-2])


def skip_indices(encoder: nn.Sequential, size: int = 64) -> tuple[list[int], list[int]]:
    """Find skip points and per-child output channels by a dummy forward.

    Returns:
        (skip indices in encoder order, output channels of every child).
    """
    was_training = encoder.training
    encoder.eval()
    widths, channels = [], []
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for child in encoder:
            x = child(x)
            widths.append(x.shape[-1])
            channels.append(x.shape[1])
    encoder.train(was_training)
    idxs = [i for i in range(len(widths) - 1) if widths[i] != widths[i + 1]]
    return idxs, channels
