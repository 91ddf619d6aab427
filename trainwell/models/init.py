"""Weight initialisation as the lecture teaches it: Glorot-uniform weights, zero biases."""
from __future__ import annotations

import math

import torch
from torch import nn

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def glorot_bound(weight: torch.Tensor) -> float:
    """b = sqrt(6) / sqrt(fan_in + fan_out); for conv weights fans include the kernel area."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(6.0) / math.sqrt(fan_in + fan_out)


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """glorot: W ~ U[-b, b], biases 0. kaiming: He-uniform for ReLU, biases 0. default: torch's own."""
    if scheme == "default":
        return model
    for m in model.modules():
        if isinstance(m, _LAYERS):
            with torch.no_grad():
                if scheme == "glorot":
                    b = glorot_bound(m.weight)
                    m.weight.uniform_(-b, b)
                else:
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    m.bias.zero_()
    return model
