"""The lecture's image architecture: [convolution -> pooling]* + fully connected layers."""
from __future__ import annotations

from torch import nn

from trainwell.models import activation as make_activation
from trainwell.models.mlp import dense


def convnet(input_shape: list[int], num_classes: int, width: int = 32, depth: int = 2,
            hidden: list[int] | None = None, activation: str = "relu", batch_norm: bool = True,
            head: str = "fc", dropout: float = 0.0, **_: object) -> nn.Module:
    """`depth` stages of two 3x3 convolutions and a 2x2 max-pool; channels start at `width` and double
    each stage; then the head: `fc`, the course's, flattens the last feature maps into fully connected
    layers of sizes `hidden` (default [128]); `pool` averages each map over the image (global average
    pooling, as in ResNets and the all-convolutional net) before `hidden` (default none) and the output
    layer, so where a pattern sits does not matter and the head has few weights to overfit.

    The default (width 32, depth 2, fc) is the 32-32-64-64 reference net of the speed benchmarks.
    """
    if len(input_shape) != 3:
        raise ValueError(f"convnet needs image input (C, H, W), got shape {input_shape}; use --model mlp")
    channels, h, w = input_shape
    if head not in ("fc", "pool"):
        raise ValueError(f"head '{head}': use fc or pool")
    hidden = ([128] if head == "fc" else []) if hidden is None else hidden
    layers: list[nn.Module] = []
    for stage in range(depth):
        out = width * 2**stage
        for _ in range(2):
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(make_activation(activation))
            channels = out
        if h >= 2 and w >= 2:  # small inputs (8x8 digits) stop pooling rather than vanish
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    if head == "pool":
        layers.append(nn.AdaptiveAvgPool2d(1))
        h = w = 1
    layers.append(nn.Flatten())
    return nn.Sequential(*layers, *dense(channels * h * w, hidden, num_classes, activation, dropout))
