"""Training losses.  All work on ImageNet-normalised tensors (N, 3, H, W).

``feature`` is the lesson's perceptual loss: L1 pixel + weighted L1 on VGG16-bn
activations + Gram-matrix terms.  ``l1``, ``l1_fft`` and ``mse`` need no
pretrained network, which matters where ImageNet weights cannot be downloaded.
``mse`` optimises what PSNR measures; it is meant for fine-tuning an L1-trained
model, as some SR papers do in their last stage.  ``mse_y`` weighs the squared
error of BT.601 luma most, as the benchmarks' PSNR-Y does, and keeps a smaller
RGB term so that colour is still learnt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from sr_core.arch.encoder import (
    PretrainedWeightsUnavailableError,
    load_torchvision_model,
)
from sr_core.weights import IMAGENET_STD

LossOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]


class PixelLoss(nn.Module):
    """L1 (or squared error) on pixels, optionally plus L1 between FFT amplitudes
    (sharper edges)."""

    def __init__(self, fft_weight: float = 0.0, squared: bool = False) -> None:
        super().__init__()
        self.fft_weight = fft_weight
        self.distance = F.mse_loss if squared else F.l1_loss

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> LossOutput:
        pred, target = pred.float(), target.float()
        pixel = self.distance(pred, target)
        parts = {"pixel": pixel}
        total = pixel
        if self.fft_weight:
            fp = torch.fft.rfft2(pred, norm="ortho").abs()
            ft = torch.fft.rfft2(target, norm="ortho").abs()
            fft = F.l1_loss(fp, ft)
            parts["fft"] = fft
            total = total + self.fft_weight * fft
        return total, parts


class LumaLoss(nn.Module):
    """Squared error of BT.601 luma plus ``rgb_weight`` × the RGB squared error.

    Inputs are ImageNet-normalised; luma is taken from [0, 1] RGB and divided by
    the mean ImageNet std so both terms are in the units of ``mse``.
    """

    # Y' = 16 + (65.481 R + 128.553 G + 24.966 B) for R, G, B in [0, 1]: PSNR-Y's luma.
    luma = (65.481 / 255, 128.553 / 255, 24.966 / 255)

    def __init__(self, rgb_weight: float = 0.25) -> None:
        super().__init__()
        self.rgb_weight = rgb_weight
        std = torch.tensor(IMAGENET_STD)
        # Normalised difference → [0, 1] luma difference → units of a normalised pixel.
        self.register_buffer(
            "coef", (torch.tensor(self.luma) * std / std.mean()).view(1, 3, 1, 1)
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> LossOutput:
        diff = pred.float() - target.float()
        luma = F.mse_loss((diff * self.coef).sum(1), torch.zeros_like(diff[:, 0]))
        pixel = diff.pow(2).mean()
        return luma + self.rgb_weight * pixel, {"pixel": pixel, "luma": luma}


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C, C) divided by C·H·W."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


class FeatureLoss(nn.Module):
    """fastai lesson 7 FeatureLoss on a frozen VGG16-bn (taps 22, 32, 42)."""

    taps = (22, 32, 42)
    weights = (5.0, 15.0, 2.0)

    def __init__(self, vgg_features: nn.Sequential) -> None:
        super().__init__()
        self.vgg = vgg_features[: max(self.taps) + 1].eval()
        for p in self.vgg.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureLoss:
        super().train(mode)
        self.vgg.eval()  # BN in the loss network always uses running stats
        return self

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.vgg):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> LossOutput:
        with torch.no_grad():
            target_feats = [f.detach().float() for f in self._features(target)]
        pred_feats = [f.float() for f in self._features(pred)]
        parts = {"pixel": F.l1_loss(pred.float(), target.float())}
        total = parts["pixel"]
        for i, (fp, ft, w) in enumerate(
            zip(pred_feats, target_feats, self.weights, strict=True)
        ):
            parts[f"feat_{i}"] = w * F.l1_loss(fp, ft)
            parts[f"gram_{i}"] = (
                w**2 * 5e3 * F.l1_loss(gram_matrix(fp), gram_matrix(ft))
            )
            total = total + parts[f"feat_{i}"] + parts[f"gram_{i}"]
        return total, parts


def build_loss(name: str) -> nn.Module:
    """Loss module by recipe name.

    Raises:
        PretrainedWeightsUnavailableError: ``feature`` needs VGG16-bn ImageNet
            weights and they cannot be fetched; the message names the flags
            that train without them.
    """
    if name == "l1":
        return PixelLoss()
    if name == "l1_fft":
        return PixelLoss(fft_weight=0.05)
    if name == "mse":
        return PixelLoss(squared=True)
    if name == "mse_y":
        return LumaLoss()
    if name != "feature":
        raise ValueError(f"Unknown loss {name!r}")
    try:
        vgg = load_torchvision_model(
            models.vgg16_bn, "VGG16_BN_Weights", pretrained=True
        )
    except PretrainedWeightsUnavailableError as exc:
        raise PretrainedWeightsUnavailableError(
            f"The feature loss needs ImageNet VGG16-bn weights: {exc} A random VGG "
            "would make the loss meaningless, so training stops here. To train "
            "without ImageNet weights use --loss l1 (pixel loss), l1_fft, mse or "
            "mse_y, and --no-pretrained for the encoder."
        ) from exc
    return FeatureLoss(vgg.features)
