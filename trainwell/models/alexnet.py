"""AlexNet's layout (Krizhevsky et al. 2012): five convolutions with ReLU, three max-pools, three fully
connected layers with dropout, scaled to the input size.

At 224x224 and width 64 it is the paper's net (96-256-384-384-256 channels, 11x11 stride-4 first
convolution, 4096-4096 fully connected). Smaller inputs get a smaller first convolution (5x5 stride 2 from
64 pixels, 3x3 stride 1 below) and pool only while there is room; the fully connected layers default to
16 x width units. Layers are named conv1..conv5, fc6..fc8 (what an ablation removes).
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from trainwell.models import activation as make_activation


def alexnet(input_shape: list[int], num_classes: int, width: int | None = None, hidden: list[int] | None = None,
            dropout: float = 0.5, batch_norm: bool = False, activation: str = "relu", **_: object) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"alexnet needs image input (C, H, W), got shape {input_shape}; use --model mlp")
    channels, h, w = input_shape
    size = min(h, w)
    width = width or 64
    widths = [round(width * f) for f in (1.5, 4, 6, 6, 4)]  # 96, 256, 384, 384, 256 at width 64
    if size >= 128:
        first = (11, 4, 2)                      # kernel, stride, padding: the paper's
    elif size >= 64:
        first = (5, 2, 2)
    else:
        first = (3, 1, 1)
    hidden = hidden if hidden is not None else ([4096, 4096] if size >= 128 else [16 * width] * 2)
    layers: list[tuple[str, nn.Module]] = []
    in_ch = channels
    for i, out in enumerate(widths, start=1):
        k, s, p = first if i == 1 else ((5, 1, 2) if i == 2 else (3, 1, 1))
        layers.append((f"conv{i}", nn.Conv2d(in_ch, out, k, s, padding=p, bias=not batch_norm)))
        size = (size + 2 * p - k) // s + 1
        if batch_norm:
            layers.append((f"norm{i}", nn.BatchNorm2d(out)))
        layers.append((f"relu{i}", make_activation(activation)))
        if i in (1, 2, 5) and size >= 3:  # overlapping 3x3 stride-2 pooling, as in the paper
            layers.append((f"pool{i}", nn.MaxPool2d(3, 2)))
            size = (size - 3) // 2 + 1
        in_ch = out
    pooled = min(6, size)  # the paper's 6x6 grid before fc6, or what a small input has left
    layers += [("avgpool", nn.AdaptiveAvgPool2d(pooled)), ("flatten", nn.Flatten())]
    features = in_ch * pooled * pooled
    for j, units in enumerate(hidden, start=6):
        if dropout > 0:
            layers.append((f"drop{j}", nn.Dropout(dropout)))
        layers += [(f"fc{j}", nn.Linear(features, units)), (f"relu{j}", make_activation(activation))]
        features = units
    layers.append((f"fc{6 + len(hidden)}", nn.Linear(features, num_classes)))
    return nn.Sequential(OrderedDict(layers))
