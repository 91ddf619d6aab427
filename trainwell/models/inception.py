"""GoogLeNet-style networks (Szegedy et al. 2015): inception modules with 1x1 reductions, global average
pooling, no large fully connected head.

Stages follow GoogLeNet (3a-3b, 4a-4e, 5a-5b, a max-pool between stages) with every channel count scaled
by width / 64 (width 64 is the paper's). Inputs of 64 pixels and more get the paper's stem (7x7 stride 2,
max-pool, 1x1, 3x3, max-pool); smaller ones a single 3x3 convolution, so 28x28 and 32x32 images keep
their resolution into the first modules. `depth` is the number of stages (1 to 3).
"""
from __future__ import annotations

import torch
from torch import nn

from trainwell.models import activation as make_activation

# GoogLeNet's modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection), per stage
STAGES = (
    [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)],
    [(192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)],
    [(256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)],
)


def _conv(i: int, o: int, k: int, batch_norm: bool, activation: str, stride: int = 1) -> nn.Sequential:
    layers = [nn.Conv2d(i, o, k, stride, padding=k // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(o))
    return nn.Sequential(*layers, make_activation(activation))


class InceptionModule(nn.Module):
    """Four branches on the same input, concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5;
    3x3 max-pool -> 1x1. The 1x1 reductions keep the 3x3 and 5x5 convolutions cheap.

    >>> m = InceptionModule(192, 64, 96, 128, 16, 32, 32); m.out_channels   # doctest: +SKIP
    256
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                 pool_proj: int, batch_norm: bool = True, activation: str = "relu") -> None:
        super().__init__()
        self.branch1 = _conv(in_channels, c1, 1, batch_norm, activation)
        self.branch3 = nn.Sequential(_conv(in_channels, c3_reduce, 1, batch_norm, activation),
                                     _conv(c3_reduce, c3, 3, batch_norm, activation))
        self.branch5 = nn.Sequential(_conv(in_channels, c5_reduce, 1, batch_norm, activation),
                                     _conv(c5_reduce, c5, 5, batch_norm, activation))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, padding=1),
                                         _conv(in_channels, pool_proj, 1, batch_norm, activation))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


def inception(input_shape: list[int], num_classes: int, width: int | None = None, depth: int | None = None,
              batch_norm: bool = True, dropout: float = 0.4, activation: str = "relu", **_: object) -> nn.Module:
    """Default width 64 (the paper's channels) from 64 pixels up, 16 below; default depth 3 from 64 pixels
    up, 2 below (3a-3b, 4a-4e)."""
    if len(input_shape) != 3:
        raise ValueError(f"inception needs image input (C, H, W), got shape {input_shape}; use --model mlp")
    channels, h, w = input_shape
    large = min(h, w) >= 64
    width = width or (64 if large else 16)
    depth = depth or (3 if large else 2)
    if not 1 <= depth <= len(STAGES):
        raise ValueError(f"depth {depth}: inception has 1 to {len(STAGES)} stages")

    def scale(c: int) -> int:
        return max(1, round(c * width / 64))

    if large:
        stem = [_conv(channels, scale(64), 7, batch_norm, activation, stride=2), nn.MaxPool2d(3, 2, padding=1),
                _conv(scale(64), scale(64), 1, batch_norm, activation),
                _conv(scale(64), scale(192), 3, batch_norm, activation), nn.MaxPool2d(3, 2, padding=1)]
    else:
        stem = [_conv(channels, scale(192), 3, batch_norm, activation)]
    layers: list[nn.Module] = list(stem)
    in_ch = scale(192)
    for s, stage in enumerate(STAGES[:depth]):
        if s > 0 and min(h, w) >= 2:
            layers.append(nn.MaxPool2d(3, 2, padding=1))
        for spec in stage:
            module = InceptionModule(in_ch, *(scale(c) for c in spec), batch_norm=batch_norm, activation=activation)
            layers.append(module)
            in_ch = module.out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_ch, num_classes))
    return nn.Sequential(*layers)
