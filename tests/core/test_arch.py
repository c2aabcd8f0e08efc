"""Architecture pins: parameter counts, layer groups, key layout, shapes."""

from __future__ import annotations

import pytest
import torch

from sr_core.arch import UNetConfig, build_unet
from sr_core.arch.decoder import PixelShuffleUp


@pytest.fixture(scope="module")
def r34():
    return build_unet(UNetConfig(encoder="resnet34"))


def test_resnet34_parameter_count_matches_fastai(r34):
    assert sum(p.numel() for p in r34.parameters()) == 41_229_213
    g_params = sum(
        p.numel() for n, p in r34.named_parameters() if n.endswith("original0")
    )
    assert g_params == 7_945  # weight-norm magnitudes fastai's summary skips


def test_layer_groups_match_fastai_split(r34):
    sizes = [
        sum(p.numel() for m in group for p in m.parameters())
        for group in r34.layer_groups()
    ]
    assert sizes == [1_347_904, 19_936_768, 19_944_541]


def test_skip_points_and_decoder_channels(r34):
    assert r34.skip_idxs == [2, 4, 5, 6]
    assert [b.out_channels for b in r34.blocks] == [512, 384, 256, 96]


def test_state_dict_key_layout_is_pinned(r34):
    keys = [k for k in r34.state_dict() if not k.startswith("encoder.")]
    assert keys[:6] == [
        "bottleneck_bn.weight",
        "bottleneck_bn.bias",
        "bottleneck_bn.running_mean",
        "bottleneck_bn.running_var",
        "bottleneck_bn.num_batches_tracked",
        "middle.0.0.bias",
    ]
    assert "blocks.3.shuf.conv.0.parametrizations.weight.original1" in keys
    assert "final_shuffle.conv.0.parametrizations.weight.original0" in keys
    assert "residual.layers.1.0.bias" in keys
    assert keys[-3:] == [
        "head.0.bias",
        "head.0.parametrizations.weight.original0",
        "head.0.parametrizations.weight.original1",
    ]
    assert len(r34.state_dict()) == 295


@pytest.mark.parametrize("size", [(64, 64), (96, 160), (50, 66)])
def test_output_shape_equals_input_shape(size):
    net = build_unet(UNetConfig(encoder="resnet18")).eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert net(x).shape == x.shape


def test_icnr_starts_as_nearest_neighbour_upsampling():
    up = PixelShuffleUp(8, 8, blur=False, icnr=True)
    w = up.conv[0].weight  # effective (weight-normed) weight
    groups = w.view(8, 4, 8, 1, 1)
    assert torch.allclose(groups, groups[:, :1].expand_as(groups))


def test_faithful_mode_has_no_icnr_and_blurs_final_shuffle():
    net = build_unet(
        UNetConfig(encoder="resnet18", icnr=False, blur_final_shuffle=True)
    )
    assert net.final_shuffle.blur
    w = (
        net.blocks[0]
        .shuf.conv[0]
        .weight.view(-1, 4, *net.blocks[0].shuf.conv[0].weight.shape[1:])
    )
    assert not torch.allclose(w, w[:, :1].expand_as(w))


def test_detached_skips_stop_encoder_gradient_through_skips():
    torch.manual_seed(0)
    net = build_unet(UNetConfig(encoder="resnet18", detach_skips=True))
    x = torch.randn(1, 3, 64, 64)
    net(x).sum().backward()
    # layer1's output only reaches the loss through the (detached) skip and
    # through layer2..4 → bottleneck, so its grad exists but differs from attached.
    g_detached = net.encoder[4][0].conv1.weight.grad.clone()
    net2 = build_unet(UNetConfig(encoder="resnet18", detach_skips=False))
    net2.load_state_dict(net.state_dict())
    net2(x).sum().backward()
    assert not torch.allclose(g_detached, net2.encoder[4][0].conv1.weight.grad)


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ValueError, match="resnet34"):
        build_unet(UNetConfig(encoder="vgg11"))
