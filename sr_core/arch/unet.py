"""Assembly of the super-resolution U-Net (fastai v1 ``unet_learner`` rebuild).

The network maps an ImageNet-normalised image that was already resized to the
output size (N, 3, H, W) to a refined image of the same size, in the same
normalised space (no output activation).  H and W should be multiples of 32;
other even sizes work through nearest resizes inside the decoder.

Module order (and so ``state_dict`` order) follows fastai's DynamicUnet:
encoder, bottleneck BN, middle convs, four UnetBlocks, final shuffle, residual
block, head.  ``sr_core.weights`` maps fastai's positional key names onto these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.arch.decoder import (
    ConvLayer,
    PixelShuffleUp,
    ResBlock,
    UnetBlock,
    skip_batchnorm,
)
from sr_core.arch.encoder import build_encoder, skip_indices


@dataclass(frozen=True)
class UNetConfig:
    """Architecture hyperparameters; stored in every weights file.

    Attributes:
        encoder: torchvision ResNet name (resnet18, resnet34, resnet50).
        blur: shift-blur after the four UnetBlock upsamplers.
        blur_final_shuffle: also blur the final upsampler (fastai <= 1.0.55 bug).
        icnr: ICNR init that survives weight norm (fastai v2 fix); False
            reproduces fastai v1 (plain kaiming on the upsamplers).
        detach_skips: cut gradient through skip tensors (fastai <= 1.0.58).
    """

    encoder: str = "resnet34"
    blur: bool = True
    blur_final_shuffle: bool = False
    icnr: bool = True
    detach_skips: bool = False

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> UNetConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"Unknown architecture settings: {sorted(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


class SuperResUNet(nn.Module):
    """ResNet-encoder U-Net with PixelShuffle upsampling and weight-normed decoder."""

    size_multiple = 32

    def __init__(self, config: UNetConfig, pretrained_encoder: bool = False) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder, pretrained=pretrained_encoder)
        skips, channels = skip_indices(self.encoder)
        self.skip_idxs = skips
        ni = channels[-1]
        self.bottleneck_bn = skip_batchnorm(ni)
        self.middle = nn.Sequential(ConvLayer(ni, ni * 2), ConvLayer(ni * 2, ni))
        blocks = []
        up_c = ni
        for i, idx in enumerate(reversed(skips)):
            last = i == len(skips) - 1
            block = UnetBlock(
                up_c,
                channels[idx],
                final_div=not last,
                blur=config.blur,
                icnr=config.icnr,
            )
            blocks.append(block)
            up_c = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.final_shuffle = PixelShuffleUp(
            up_c, up_c, blur=config.blur and config.blur_final_shuffle, icnr=config.icnr
        )
        self.residual = ResBlock(up_c + 3)
        self.head = ConvLayer(up_c + 3, 3, ks=1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        h = x
        for i, child in enumerate(self.encoder):
            h = child(h)
            if i in self.skip_idxs:
                skips.append(h.detach() if self.config.detach_skips else h)
        h = self.middle(F.relu(self.bottleneck_bn(h)))
        for block, skip in zip(self.blocks, reversed(skips), strict=True):
            h = block(h, skip)
        h = self.final_shuffle(h)
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, x.shape[-2:], mode="nearest")
        h = self.residual(torch.cat([h, x], dim=1))
        return self.head(h)

    def layer_groups(self) -> list[list[nn.Module]]:
        """fastai's three groups: encoder[:6], encoder[6:], everything after."""
        enc = list(self.encoder)
        decoder = [
            self.bottleneck_bn,
            self.middle,
            self.blocks,
            self.final_shuffle,
            self.residual,
            self.head,
        ]
        return [enc[:6], enc[6:], decoder]


def build_unet(
    config: UNetConfig | None = None, pretrained_encoder: bool = False
) -> SuperResUNet:
    """Build the U-Net from a config (default: resnet34, fastai switches)."""
    return SuperResUNet(config or UNetConfig(), pretrained_encoder=pretrained_encoder)
