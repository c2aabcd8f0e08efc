"""U-Net decoder blocks of fastai v1's DynamicUnet (``NormType.Weight``, blur).

Every decoder conv is weight-normalised (``torch.nn.utils.parametrizations``) with
a bias and no BatchNorm; BatchNorm is applied only to skip tensors and to the
encoder's last feature map, initialised to weight 1 and bias 1e-3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class ConvLayer(nn.Sequential):
    """Weight-normed conv (kaiming init, zero bias) followed by ReLU if ``act``.

    ``icnr`` fills the kernel so that a following PixelShuffle starts out as
    nearest-neighbour upsampling (Aitken et al. 2017); weight norm is applied
    after, so g and v start from that kernel (fastai v2 behaviour).
    """

    def __init__(
        self, ni: int, nf: int, ks: int = 3, act: bool = True, icnr: bool = False
    ) -> None:
        conv = nn.Conv2d(ni, nf, ks, padding=(ks - 1) // 2, bias=True)
        if icnr:
            _icnr_(conv.weight)
        else:
            nn.init.kaiming_normal_(conv.weight)
        nn.init.zeros_(conv.bias)
        layers: list[nn.Module] = [weight_norm(conv, dim=0)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def _icnr_(weight: torch.Tensor, scale: int = 2) -> None:
    nf_r2, ni, kh, kw = weight.shape
    sub = torch.empty(nf_r2 // scale**2, ni, kh, kw)
    nn.init.kaiming_normal_(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale**2, dim=0))


def skip_batchnorm(n: int) -> nn.BatchNorm2d:
    """BatchNorm2d with weight 1 and bias 1e-3, as fastai's ``batchnorm_2d``."""
    bn = nn.BatchNorm2d(n)
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.fill_(1e-3)
    return bn


class PixelShuffleUp(nn.Module):
    """1x1 conv to 4*nf, ReLU, PixelShuffle(2), optional 2x2 shift-blur."""

    def __init__(self, ni: int, nf: int, blur: bool, icnr: bool) -> None:
        super().__init__()
        self.conv = ConvLayer(ni, nf * 4, ks=1, act=False, icnr=icnr)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = blur

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place: out of place it took 0.53 s vs 0.01 s (384x640² bf16 channels_last).
        x = self.shuffle(self.conv(x).relu_())
        if self.blur:
            # Pad left/top by one, average 2x2 with stride 1: fights checkerboards.
            x = F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)
        return x


class UnetBlock(nn.Module):
    """Upsample ×2, concatenate BN(skip), ReLU, two 3x3 weight-normed convs."""

    def __init__(
        self,
        up_in_c: int,
        skip_c: int,
        final_div: bool,
        blur: bool,
        icnr: bool,
    ) -> None:
        super().__init__()
        self.shuf = PixelShuffleUp(up_in_c, up_in_c // 2, blur=blur, icnr=icnr)
        self.bn = skip_batchnorm(skip_c)
        ni = up_in_c // 2 + skip_c
        nf = ni if final_div else ni // 2
        self.conv1 = ConvLayer(ni, nf)
        self.conv2 = ConvLayer(nf, nf)
        self.out_channels = nf

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        u = self.shuf(up)
        if u.shape[-2:] != skip.shape[-2:]:
            u = F.interpolate(u, skip.shape[-2:], mode="nearest")
        h = torch.cat([u, self.bn(skip)], dim=1).relu_()
        return self.conv2(self.conv1(h))


class ResBlock(nn.Module):
    """``x + conv(conv(x))`` with both convs ending in ReLU (fastai ``res_block``)."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(ConvLayer(nf, nf), ConvLayer(nf, nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)
